//! Browser journeys of the RGPD screens (the DPO), on both databases.
