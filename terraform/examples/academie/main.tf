# Example root module: the control plane of an académie on its Kubernetes cluster,
# with a CloudNativePG database (primary + synchronous standby), SMTP and OIDC.
# The provider's version constraint is the module's (terraform/versions.tf).
variable "kubeconfig" {
  description = "Path of the kubeconfig of the target cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "image" {
  description = "Image of entctl, by digest."
  type        = string
}

provider "kubernetes" {
  config_path = var.kubeconfig
}

module "entcp" {
  source = "../.."

  image           = var.image
  replicas        = 3
  host            = "ent-pilotage.ac-creteil.fr"
  tls_secret_name = "ent-pilotage-tls"
  ingress_annotations = {
    "cert-manager.io/cluster-issuer" = "letsencrypt"
  }

  database = {
    mode         = "cloudnativepg"
    instances    = 2
    storage_size = "50Gi"
  }

  smtp = {
    host        = "smtp.ac-creteil.fr"
    from        = "ent-pilotage@ac-creteil.fr"
    secret_name = "entcp-smtp"
  }

  oidc = {
    label       = "Portail agents"
    issuer      = "https://auth.ac-creteil.fr/realms/agents"
    client_id   = "ent-pilotage"
    secret_name = "entcp-oidc"
  }

  config = {
    jobs = { timezone = "Europe/Paris" }
  }
}

output "url" {
  description = "Public URL of the control plane."
  value       = module.entcp.url
}

output "service_account" {
  description = "ServiceAccount of the control plane."
  value       = module.entcp.service_account
}
