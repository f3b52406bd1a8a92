/* Moves the focus to what a refused form answers (its error summary, else the page's error
   notice), so that a screen reader reads it first and the keyboard starts from it. */
(function () {
  var refusal = document.querySelector(".console-error-summary") || document.querySelector(".console-notice--error");
  if (refusal) {
    refusal.focus();
  }
})();
