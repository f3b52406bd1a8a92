//! The table of every job of every capability: the one place that names them
//! all. Each entry adapts the application state to what the capability's job
//! function takes.

use super::AppState;
use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use ent_conventions::conventions::{self, ConventionsState};
use ent_groupements::groupements::{self, GroupementsState};
use ent_kernel::config::Config;
use ent_kernel::store::purge_idempotency_keys;
use ent_ops::jobs::{self, check_config, fill_defaults, purge_runs, JobFuture, RUNS_KEPT};
use ent_ops::notify::{self, NotifyState};
use ent_platform::identity::sessions::{purge_ended, Timeouts};
use ent_rgpd::rgpd::{self, RgpdState};
use ent_support::support::{self, SupportState};
use ent_tenants::provisioning::{self, ProvisioningState};
use ent_tenants::tenants::{self, TenantsState};

/// A job of this application.
pub type Job = jobs::Job<AppState>;
/// A job of this application with its configuration.
pub type ScheduledJob = jobs::ScheduledJob<AppState>;

/// The job called `name`.
pub fn find(name: &str) -> Option<Job> {
    all().into_iter().find(|job| job.name == name)
}

/// Gives every job an entry in the configuration's `jobs` section (its default
/// schedule when the file omits it), then refuses unknown job names, invalid
/// cron expressions and time zones.
pub fn configure(config: &mut Config) -> anyhow::Result<()> {
    let jobs = all();
    fill_defaults(&mut config.jobs, &jobs);
    check_config(&config.jobs, &jobs)
}

/// Every job with its effective configuration.
pub fn scheduled_jobs(config: &Config) -> anyhow::Result<Vec<ScheduledJob>> {
    jobs::scheduled_jobs(&config.jobs, all())
}

/// A job entry point on the application state, running `$job` on the capability's context.
macro_rules! adapter {
    ($name:ident, $context:ty, $job:path) => {
        fn $name(state: &AppState, now: DateTime<Utc>) -> JobFuture<'_> {
            let context = <$context>::from_ref(state);
            Box::pin(async move { $job(&context, now).await })
        }
    };
}

adapter!(outbox_send, NotifyState, notify::send_job);
adapter!(outbox_purge, NotifyState, notify::purge_job);
adapter!(conventions_daily, ConventionsState, conventions::jobs::daily_job);
adapter!(tenants_reconcile, ProvisioningState, provisioning::reconcile::reconcile_job);
adapter!(support_reminders, SupportState, support::jobs::remind_job);
adapter!(support_sweep, SupportState, support::jobs::sweep_job);
adapter!(support_auto_close, SupportState, support::jobs::auto_close_job);
adapter!(tenants_purge, ProvisioningState, provisioning::purge::purge_job);
adapter!(tenants_coverage, TenantsState, tenants::coverage::coverage_job);
adapter!(rgpd_snapshots, RgpdState, rgpd::jobs::run_job);
adapter!(groupements_handover, GroupementsState, groupements::handover::handover_job);

/// Deletes what has no use left and may hold personal data: ended console sessions (with
/// their OpenID Connect ID token) and expired pending OpenID Connect logins, idempotency
/// keys' stored answers, old job runs.
fn retention_purge(state: &AppState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let timeouts = Timeouts::of(&state.config.console);
        let sessions = purge_ended(&state.store, timeouts, now).await?;
        let keys = purge_idempotency_keys(&state.store, now).await?;
        let runs = purge_runs(&state.store, now - RUNS_KEPT).await?;
        Ok(format!(
            "{sessions} session(s) de console terminée(s), {keys} clé(s) d'idempotence échue(s), \
             {runs} exécution(s) de tâche de plus de 90 jours supprimée(s)"
        ))
    })
}

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
            "tenants-coverage",
            "Signale les tenants en service qu'aucune convention en vigueur ne couvre plus (et ceux de nouveau couverts), sans les suspendre",
            "45 6 * * *",
            tenants_coverage,
        ),
        Job::new(
            "tenants-reconcile",
            "Réconcilie les tenants : applique les objets qui ont changé, rien sinon",
            "*/5 * * * *",
            tenants_reconcile,
        ),
        Job::new(
            groupements::handover::JOB,
            "Passe au titulaire de l'accord-cadre en cours qui les couvre les ENT qu'une attribution avait laissés à leur éditeur, une fois fini l'accord-cadre qui les y liait",
            "0 7 * * *",
            groupements_handover,
        ),
        Job::new(
            "support-reminders",
            "Relance les demandeurs dont la réponse est attendue depuis 3 jours, pendant leurs heures ouvrées, et résout les tickets restés 15 jours sans leur réponse",
            "0 9 * * *",
            support_reminders,
        ),
        Job::new(
            "support-sweep",
            "Détecte les dépassements d'échéance des tickets, prévient les responsables, escalade si la politique le prévoit ; clôt les tickets restés ouverts sur un ENT purgé",
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
            "Purge les tenants archivés à leur date de purge (volumes, identifiants), annonce les purges à venir",
            "30 3 * * *",
            tenants_purge,
        ),
        Job::new(
            "rgpd-snapshots",
            "Instantané mensuel des registres RGPD qui ont changé, avec un courriel au DPO",
            "0 4 1 * *",
            rgpd_snapshots,
        ),
        Job::new(
            "retention-purge",
            "Supprime les sessions de console terminées, les clés d'idempotence échues (24 h ; jetons des formulaires de la console : 30 jours) et les exécutions de tâches de plus de 90 jours",
            "45 3 * * *",
            retention_purge,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::config::MailTransport;

    #[test]
    fn default_config_schedules_every_job_in_paris_time_and_writes_mail_to_files() {
        let mut config = Config::default();
        configure(&mut config).unwrap();
        config.validate().unwrap();
        assert_eq!(config.jobs.timezone, "Europe/Paris");
        assert_eq!(config.mail.transport, MailTransport::File);
        for job in all() {
            let setting = &config.jobs.each[job.name];
            assert!(setting.enabled);
            assert_eq!(setting.schedule.as_deref(), Some(job.default_schedule));
        }
    }

    #[test]
    fn the_readme_lists_every_job() {
        let readme = include_str!("../../../../README.md");
        for job in all() {
            assert!(readme.contains(&format!("| `{}` |", job.name)), "README.md lists no job {}", job.name);
        }
    }

    #[test]
    fn a_job_can_be_disabled_or_rescheduled_and_keeps_other_defaults() {
        let yaml = "jobs:\n  outbox-purge:\n    enabled: false\n  outbox-send:\n    schedule: '*/5 * * * *'\n";
        let mut config = Config::from_yaml(yaml).unwrap();
        configure(&mut config).unwrap();
        config.validate().unwrap();
        assert!(!config.jobs.each["outbox-purge"].enabled);
        assert!(config.jobs.each["outbox-purge"].schedule.is_some());
        assert_eq!(config.jobs.each["outbox-send"].schedule.as_deref(), Some("*/5 * * * *"));
        assert_eq!(config.jobs.timezone, "Europe/Paris");
    }

    #[test]
    fn an_invalid_cron_expression_is_refused_naming_the_job() {
        let mut config = Config::from_yaml("jobs:\n  outbox-send:\n    schedule: 'tous les jours'\n").unwrap();
        let err = configure(&mut config).unwrap_err().to_string();
        assert!(err.contains("outbox-send") && err.contains("cron"), "{err}");
        let mut config = Config::from_yaml("jobs:\n  inconnue:\n    enabled: true\n").unwrap();
        let err = configure(&mut config).unwrap_err().to_string();
        assert!(err.contains("inconnue"), "{err}");
    }
}
