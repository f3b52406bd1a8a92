variable "namespace" {
  description = "Namespace of the control plane (created by the module when create_namespace is true)."
  type        = string
  default     = "entcp"
}

variable "create_namespace" {
  description = "Whether the module creates the namespace (false: it exists already)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the control plane's objects (Deployment, Service, ServiceAccount, ...)."
  type        = string
  default     = "entcp"
}

variable "image" {
  description = "Container image of entctl, by digest (registry/entcp@sha256:...); the -libreoffice variant renders PDF."
  type        = string

  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "The image is pinned by its digest (...@sha256:<64 hex>)."
  }
}

variable "replicas" {
  description = "Replicas of `entctl serve`; they share one PostgreSQL database (jobs, mails and reconciles run once)."
  type        = number
  default     = 2

  validation {
    condition     = var.replicas >= 1
    error_message = "At least one replica."
  }
}

variable "resources" {
  description = "CPU and memory requests and limits of each replica."
  type = object({
    requests_cpu    = string
    requests_memory = string
    limits_cpu      = string
    limits_memory   = string
  })
  default = {
    requests_cpu    = "250m"
    requests_memory = "256Mi"
    limits_cpu      = "2"
    limits_memory   = "1Gi"
  }
}

variable "host" {
  description = "Public host name of the API and the console (Ingress rule and console.public_url)."
  type        = string
}

variable "tls_secret_name" {
  description = "Existing kubernetes.io/tls Secret of the namespace holding the certificate of host."
  type        = string
}

variable "ingress_class_name" {
  description = "IngressClass of the Ingress."
  type        = string
  default     = "nginx"
}

variable "ingress_annotations" {
  description = "Annotations of the Ingress (e.g. cert-manager's cluster-issuer); with class nginx they are added to (and override) the module's proxy-body-size (server.max_body_bytes) and proxy-read/send-timeout (3600 s)."
  type        = map(string)
  default     = {}
}

variable "config" {
  description = "Extra keys of entctl's YAML configuration (see `entctl config print`); the module sets listen, data_dir, log format, provisioning backend and public URL."
  type        = any
  default     = {}
}

variable "database" {
  description = "PostgreSQL: mode \"cloudnativepg\" (a CloudNativePG Cluster, primary and standby) or \"external\" (a URL in an existing Secret)."
  type = object({
    mode                 = string
    external_secret_name = optional(string)
    external_secret_key  = optional(string, "url")
    instances            = optional(number, 2)
    synchronous_standby  = optional(bool, true)
    storage_size         = optional(string, "20Gi")
    storage_class        = optional(string)
    image_name           = optional(string)
  })
  default = { mode = "cloudnativepg" }

  validation {
    condition     = contains(["cloudnativepg", "external"], var.database.mode)
    error_message = "database.mode is \"cloudnativepg\" or \"external\"."
  }

  validation {
    condition     = var.database.mode != "external" || var.database.external_secret_name != null
    error_message = "database.external_secret_name is required with mode \"external\"."
  }

  validation {
    condition     = var.database.mode != "cloudnativepg" || var.database.instances >= 2
    error_message = "A CloudNativePG cluster has a primary and at least one standby (instances >= 2)."
  }
}

variable "database_backup" {
  description = "Backups of the CloudNativePG cluster (mode \"cloudnativepg\" only): WAL archiving and base backups to an S3-compatible object store (barmanObjectStore), a ScheduledBackup, and the retention policy. null (default): no backup is configured by this module."
  type = object({
    destination_path   = string
    endpoint_url       = optional(string)
    credentials_secret = string
    schedule           = optional(string, "0 0 * * * *")
    retention_policy   = optional(string, "30d")
  })
  default = null

  validation {
    condition     = var.database_backup == null || var.database.mode == "cloudnativepg"
    error_message = "database_backup configures the CloudNativePG cluster: it needs database.mode = \"cloudnativepg\"."
  }
}

variable "smtp" {
  description = "SMTP relay of the outbox; credentials from the keys username and password of an existing Secret (null: mails stay in the data folder)."
  type = object({
    host        = string
    port        = optional(number, 587)
    tls         = optional(string, "starttls")
    from        = string
    secret_name = string
  })
  default = null
}

variable "oidc" {
  description = "OpenID Connect sign-in of the console; the client secret from an existing Secret (null: no OIDC)."
  type = object({
    label       = string
    issuer      = string
    client_id   = string
    secret_name = string
    secret_key  = optional(string, "client-secret")
  })
  default = null
}

variable "min_available" {
  description = "PodDisruptionBudget: replicas kept during voluntary disruptions (node drains)."
  type        = number
  default     = 1
}

variable "termination_grace_seconds" {
  description = "Grace period on SIGTERM; longer than the configuration's server.unready_seconds + server.shutdown_seconds."
  type        = number
  default     = 60
}

variable "restrict_to_tenant_namespaces" {
  description = "Adds a ValidatingAdmissionPolicy refusing the control plane's writes outside the ent-* namespaces (Kubernetes >= 1.30)."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Extra labels of every object of the module."
  type        = map(string)
  default     = {}
}
