//! The console's groupement screens, in process, on both databases.
