output "url" {
  description = "Public URL of the API and the console."
  value       = "https://${var.host}"
}

output "namespace" {
  description = "Namespace of the control plane."
  value       = local.namespace
}

output "service_account" {
  description = "ServiceAccount the replicas run as (the kube backend's identity)."
  value       = kubernetes_service_account_v1.entcp.metadata[0].name
}

output "service" {
  description = "In-cluster address of the API (Service name and port)."
  value       = "${kubernetes_service_v1.entcp.metadata[0].name}.${local.namespace}.svc:80"
}

output "database_secret" {
  description = "Secret and key holding the database URL the replicas use."
  value       = local.database_secret
}
