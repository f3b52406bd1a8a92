# The EntTenant CustomResourceDefinition, as `entctl tenants crd` prints it (the file is
# generated and committed; a test checks it equals the command's output).
resource "kubernetes_manifest" "enttenant_crd" {
  manifest = yamldecode(file("${path.module}/crd/enttenant.yaml"))
}
