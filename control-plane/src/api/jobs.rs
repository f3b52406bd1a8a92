//! The table of every job of every capability: the one place that names them
//! all. Each entry adapts the application state to what the capability's job
//! function takes.

use super::AppState;
use crate::conventions::ConventionsState;
use crate::jobs::{Job, JobFuture};
use crate::notify::NotifyState;
use crate::provisioning::ProvisioningState;
use crate::rgpd::RgpdState;
use crate::support::SupportState;
use axum::extract::FromRef;
use chrono::{DateTime, Utc};

/// A job entry point on the application state, running `$job` on the capability's context.
macro_rules! adapter {
    ($name:ident, $context:ty, $job:path) => {
        fn $name(state: &AppState, now: DateTime<Utc>) -> JobFuture<'_> {
            let context = <$context>::from_ref(state);
            Box::pin(async move { $job(&context, now).await })
        }
    };
}

adapter!(outbox_send, NotifyState, crate::notify::send_job);
adapter!(outbox_purge, NotifyState, crate::notify::purge_job);
adapter!(conventions_daily, ConventionsState, crate::conventions::jobs::daily_job);
adapter!(tenants_reconcile, ProvisioningState, crate::provisioning::reconcile::reconcile_job);
adapter!(support_reminders, SupportState, crate::support::jobs::remind_job);
adapter!(support_sweep, SupportState, crate::support::jobs::sweep_job);
adapter!(support_auto_close, SupportState, crate::support::jobs::auto_close_job);
adapter!(tenants_purge, ProvisioningState, crate::provisioning::purge::purge_job);
adapter!(rgpd_snapshots, RgpdState, crate::rgpd::jobs::run_job);

/// Every job declared in code.
pub fn all() -> Vec<Job> {
    vec![
        Job::new(
            "outbox-send",
            "Envoie les courriels en attente de la file d'envoi",
            "* * * * *",
            outbox_send,
        ),
        Job::new(
            "outbox-purge",
            "Supprime les courriels envoyés plus anciens que la durée de conservation",
            "30 3 * * *",
            outbox_purge,
        ),
        Job::new(
            "conventions-daily",
            "Active les conventions signées, expire les échues, envoie les rappels d'échéance et de signature",
            "15 6 * * *",
            conventions_daily,
        ),
        Job::new(
            "tenants-reconcile",
            "Réconcilie les tenants : applique les objets qui ont changé, rien sinon",
            "*/5 * * * *",
            tenants_reconcile,
        ),
        Job::new(
            "support-reminders",
            "Relance les demandeurs dont la réponse est attendue depuis 3 jours, pendant leurs heures ouvrées",
            "0 9 * * *",
            support_reminders,
        ),
        Job::new(
            "support-sweep",
            "Détecte les dépassements d'échéance des tickets, prévient les responsables, escalade si la politique le prévoit",
            "*/5 * * * *",
            support_sweep,
        ),
        Job::new(
            "support-auto-close",
            "Clôt les tickets résolus depuis le délai de la politique de support",
            "30 6 * * *",
            support_auto_close,
        ),
        Job::new(
            "tenants-purge",
            "Purge les tenants archivés depuis plus que la durée de conservation (volumes, identifiants)",
            "30 3 * * *",
            tenants_purge,
        ),
        Job::new(
            "rgpd-snapshots",
            "Instantané mensuel des registres RGPD qui ont changé, avec un courriel au DPO",
            "0 4 1 * *",
            rgpd_snapshots,
        ),
    ]
}
