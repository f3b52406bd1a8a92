//! Browser journeys of the groupement screens (coordinator and communes), on both databases.
