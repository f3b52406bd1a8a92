//! The console's RGPD screens, in process, on both databases.
