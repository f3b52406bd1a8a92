-- Seed of the tenant's generated credentials (stable across reconciles).
ALTER TABLE tenants ADD COLUMN secret_seed TEXT;
