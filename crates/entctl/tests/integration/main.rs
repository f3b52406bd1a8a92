//! The integration tests of the crate, in one binary (one link on a 2-core machine):
//! a module per capability; `common` is the test kit they share with `tests/e2e_cli.rs`.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod ambiguous_codes;
mod api;
mod audit_readers;
mod authz;
mod browser;
mod browser_groupements;
mod browser_rgpd;
mod catalog;
mod console;
mod console_account;
mod console_conventions;
mod console_groupements;
mod console_rgpd;
mod console_screens;
mod console_tickets;
mod conventions;
mod counters;
mod db_faults;
mod groupements;
mod groupements_cli;
mod hardening;
mod jobs_outbox;
mod kit;
mod listener;
mod observability;
mod oidc;
mod openapi_conformance;
mod platform;
mod processors;
mod production;
mod query_plans;
mod read_cache;
mod read_path;
mod registry_store;
mod replicas;
mod rgpd;
mod rgpd_audit;
mod rows;
mod scheduler;
mod scope;
mod support;
mod support_calendars;
mod tenants;
mod tenants_annex;
mod tenants_coverage;
mod tenants_egress;
mod tenants_guardrails;
mod tenants_kube;
mod tenants_notices;
mod tenants_schema;
