locals {
  namespace = var.create_namespace ? kubernetes_namespace_v1.entcp[0].metadata[0].name : var.namespace

  labels = merge(var.labels, {
    "app.kubernetes.io/name"       = "entcp"
    "app.kubernetes.io/instance"   = var.name
    "app.kubernetes.io/managed-by" = "terraform"
  })
  selector = {
    "app.kubernetes.io/name"     = "entcp"
    "app.kubernetes.io/instance" = var.name
  }

  # ingress-nginx's defaults (1 MiB bodies, 60 s to answer) cut what entctl accepts: a national
  # annuaire CSV up to server.max_body_bytes, uploads and exports exempt from the request timeout.
  # The given annotations win over these.
  max_body_mib = ceil(try(var.config.server.max_body_bytes, 536870912) / 1048576)
  ingress_annotations = merge(var.ingress_class_name == "nginx" ? {
    "nginx.ingress.kubernetes.io/proxy-body-size"    = "${local.max_body_mib}m"
    "nginx.ingress.kubernetes.io/proxy-read-timeout" = "3600"
    "nginx.ingress.kubernetes.io/proxy-send-timeout" = "3600"
  } : {}, var.ingress_annotations)

  # Where the replicas read the database URL: CloudNativePG's application Secret, or the one given.
  database_secret = var.database.mode == "cloudnativepg" ? {
    name = "${var.name}-db-app"
    key  = "uri"
    } : {
    name = var.database.external_secret_name
    key  = var.database.external_secret_key
  }

  # entctl's configuration (ConfigMap); secrets come from the environment, never from this file.
  config = merge(var.config, {
    data_dir = "/var/lib/entcp"
    # Behind the module's own Ingress every request comes from the ingress controller: without
    # the client address it appends to X-Forwarded-For, one client's failures would lock out all.
    server       = merge(try(var.config.server, {}), { listen = "0.0.0.0:8080", trust_forwarded_for = true })
    log          = merge(try(var.config.log, {}), { format = "json" })
    provisioning = merge(try(var.config.provisioning, {}), { backend = "kube" })
    console      = merge(try(var.config.console, {}), { public_url = "https://${var.host}" })
    identity = var.oidc == null ? try(var.config.identity, {}) : {
      oidc = {
        label             = var.oidc.label
        issuer            = var.oidc.issuer
        client_id         = var.oidc.client_id
        client_secret_env = "ENTCP_OIDC_CLIENT_SECRET"
        redirect_url      = "https://${var.host}/connexion/oidc/retour"
      }
    }
  })
}

resource "kubernetes_namespace_v1" "entcp" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = var.namespace
    labels = merge(local.labels, {
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    })
  }
}

resource "kubernetes_service_account_v1" "entcp" {
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }
}

resource "kubernetes_config_map_v1" "entcp" {
  metadata {
    name      = "${var.name}-config"
    namespace = local.namespace
    labels    = local.labels
  }

  data = {
    "config.yaml" = yamlencode(local.config)
  }
}
