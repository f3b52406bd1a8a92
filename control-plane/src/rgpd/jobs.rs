//! The monthly `rgpd-snapshots` job: a snapshot of every register that changed
//! since its previous one, and a mail to the organisation's DPO saying what changed.
