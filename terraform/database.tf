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
    }, var.database.image_name == null ? {} : { imageName = var.database.image_name })
  }
}
