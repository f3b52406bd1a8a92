//! The console's account, notification centre and support report screens, in process, on both databases.
