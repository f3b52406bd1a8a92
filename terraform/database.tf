# Optional PostgreSQL through the CloudNativePG operator (installed beforehand): a primary
# and its standby(s), synchronous by default (no committed transaction lost at failover).
# CloudNativePG writes the application's URL into the Secret <name>-db-app, key uri.
resource "kubernetes_manifest" "database" {
  count = var.database.mode == "cloudnativepg" ? 1 : 0

  manifest = {
    apiVersion = "postgresql.cnpg.io/v1"
    kind       = "Cluster"
    metadata = {
      name      = "${var.name}-db"
      namespace = local.namespace
      labels    = local.labels
    }
    spec = merge({
      instances             = var.database.instances
      primaryUpdateStrategy = "unsupervised"
      minSyncReplicas       = var.database.synchronous_standby ? 1 : 0
      maxSyncReplicas       = var.database.synchronous_standby ? 1 : 0
      bootstrap = {
        initdb = { database = "entcp", owner = "entcp" }
      }
      storage = merge({ size = var.database.storage_size },
      var.database.storage_class == null ? {} : { storageClass = var.database.storage_class })
      affinity = { enablePodAntiAffinity = true, topologyKey = "kubernetes.io/hostname" }
      }, var.database.image_name == null ? {} : { imageName = var.database.image_name },
    var.database_backup == null ? {} : { backup = local.database_backup })
  }
}

# Optional backups (var.database_backup): WAL archived continuously and base backups kept
# `retention_policy`, in an S3-compatible bucket whose keys ACCESS_KEY_ID and
# ACCESS_SECRET_KEY are in the Secret `credentials_secret` (the operator provides both).
locals {
  database_backup = var.database_backup == null ? null : {
    retentionPolicy = var.database_backup.retention_policy
    barmanObjectStore = merge({
      destinationPath = var.database_backup.destination_path
      s3Credentials = {
        accessKeyId     = { name = var.database_backup.credentials_secret, key = "ACCESS_KEY_ID" }
        secretAccessKey = { name = var.database_backup.credentials_secret, key = "ACCESS_SECRET_KEY" }
      }
      wal  = { compression = "gzip" }
      data = { compression = "gzip" }
    }, var.database_backup.endpoint_url == null ? {} : { endpointURL = var.database_backup.endpoint_url })
  }
}

# A base backup on `schedule` (six fields, seconds first, as CloudNativePG reads them).
resource "kubernetes_manifest" "database_backup" {
  count = var.database.mode == "cloudnativepg" && var.database_backup != null ? 1 : 0

  manifest = {
    apiVersion = "postgresql.cnpg.io/v1"
    kind       = "ScheduledBackup"
    metadata = {
      name      = "${var.name}-db"
      namespace = local.namespace
      labels    = local.labels
    }
    spec = {
      schedule             = var.database_backup.schedule
      backupOwnerReference = "self"
      cluster              = { name = "${var.name}-db" }
    }
  }
}
