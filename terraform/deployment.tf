resource "kubernetes_deployment_v1" "entcp" {
  # checkov:skip=CKV_K8S_14:the image is var.image, whose validation requires a digest (no tag at all)
  # checkov:skip=CKV_K8S_43:the image is var.image, whose validation requires a digest (checkov cannot see a variable's value)
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  spec {
    replicas = var.replicas

    selector {
      match_labels = local.selector
    }

    # One replica at a time, never below the wanted count: upgrades without downtime
    # (migrations are backward compatible for one release).
    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = "1"
        max_unavailable = "0"
      }
    }

    template {
      metadata {
        labels = local.labels
        annotations = {
          # A configuration change rolls the replicas.
          "entcp.education.fr/config-sha256" = sha256(kubernetes_config_map_v1.entcp.data["config.yaml"])
        }
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.entcp.metadata[0].name
        automount_service_account_token  = true
        termination_grace_period_seconds = var.termination_grace_seconds

        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
          fs_group        = 65532
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        affinity {
          pod_anti_affinity {
            preferred_during_scheduling_ignored_during_execution {
              weight = 100
              pod_affinity_term {
                topology_key = "kubernetes.io/hostname"
                label_selector {
                  match_labels = local.selector
                }
              }
            }
          }
        }

        topology_spread_constraint {
          max_skew           = 1
          topology_key       = "topology.kubernetes.io/zone"
          when_unsatisfiable = "ScheduleAnyway"
          label_selector {
            match_labels = local.selector
          }
        }

        container {
          name              = "entctl"
          image             = var.image
          image_pull_policy = "Always"
          args              = ["serve"]

          port {
            name           = "http"
            container_port = 8080
          }

          env {
            name  = "ENTCP_CONFIG"
            value = "/etc/entcp/config.yaml"
          }

          env {
            name = "DATABASE_URL"
            value_from {
              secret_key_ref {
                name = local.database_secret.name
                key  = local.database_secret.key
              }
            }
          }

          dynamic "env" {
            for_each = var.smtp == null ? {} : {
              ENTCP_MAIL_TRANSPORT = "smtp"
              ENTCP_MAIL_FROM      = var.smtp.from
              ENTCP_SMTP_HOST      = var.smtp.host
              ENTCP_SMTP_PORT      = tostring(var.smtp.port)
              ENTCP_SMTP_TLS       = var.smtp.tls
            }
            content {
              name  = env.key
              value = env.value
            }
          }

          dynamic "env" {
            for_each = var.smtp == null ? {} : { ENTCP_SMTP_USERNAME = "username", ENTCP_SMTP_PASSWORD = "password" }
            content {
              name = env.key
              value_from {
                secret_key_ref {
                  name = var.smtp.secret_name
                  key  = env.value
                }
              }
            }
          }

          dynamic "env" {
            for_each = var.oidc == null ? [] : [var.oidc]
            content {
              name = "ENTCP_OIDC_CLIENT_SECRET"
              value_from {
                secret_key_ref {
                  name = env.value.secret_name
                  key  = env.value.secret_key
                }
              }
            }
          }

          resources {
            requests = {
              cpu    = var.resources.requests_cpu
              memory = var.resources.requests_memory
            }
            limits = {
              cpu    = var.resources.limits_cpu
              memory = var.resources.limits_memory
            }
          }

          # `/readyz` gives its own answer within 1.5 s (READY_TIMEOUT, crates/ent-server/src/api/mod.rs:
          # 503 when the database has not answered by then). The kubelet's default timeout (1 s) would
          # count a slow but ready replica as failed, and a load slowing every replica alike could take
          # them all out of the Service at once: each probe waits 3 s, over that budget.
          startup_probe {
            http_get {
              path = "/readyz"
              port = "http"
            }
            timeout_seconds   = 3
            period_seconds    = 5
            failure_threshold = 60
          }

          readiness_probe {
            http_get {
              path = "/readyz"
              port = "http"
            }
            timeout_seconds   = 3
            period_seconds    = 10
            failure_threshold = 3
          }

          # `/healthz` does not touch the database (a few ms): 3 s only rides out a saturated CPU, and
          # a restart needs 3 failures in a row (a minute).
          liveness_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            timeout_seconds   = 3
            period_seconds    = 20
            failure_threshold = 3
          }

          security_context {
            read_only_root_filesystem  = true
            allow_privilege_escalation = false
            privileged                 = false
            run_as_non_root            = true
            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "config"
            mount_path = "/etc/entcp"
            read_only  = true
          }

          volume_mount {
            name       = "data"
            mount_path = "/var/lib/entcp"
          }

          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map_v1.entcp.metadata[0].name
          }
        }

        # The data folder holds only transient files (the database holds the rest).
        volume {
          name = "data"
          empty_dir {
            size_limit = "1Gi"
          }
        }

        volume {
          name = "tmp"
          empty_dir {
            size_limit = "1Gi"
          }
        }
      }
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "entcp" {
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  spec {
    selector {
      match_labels = local.selector
    }
    min_available = var.min_available
  }
}

resource "kubernetes_service_v1" "entcp" {
  metadata {
    name      = var.name
    namespace = local.namespace
    labels    = local.labels
  }

  spec {
    selector = local.selector
    port {
      name        = "http"
      port        = 80
      target_port = "http"
    }
  }
}

resource "kubernetes_ingress_v1" "entcp" {
  metadata {
    name        = var.name
    namespace   = local.namespace
    labels      = local.labels
    annotations = local.ingress_annotations
  }

  spec {
    tls {
      hosts       = [var.host]
      secret_name = var.tls_secret_name
    }

    ingress_class_name = var.ingress_class_name

    rule {
      host = var.host
      http {
        path {
          path      = "/"
          path_type = "Prefix"
          backend {
            service {
              name = kubernetes_service_v1.entcp.metadata[0].name
              port {
                name = "http"
              }
            }
          }
        }
      }
    }
  }
}
