# The least RBAC of the kube backend. These rules must equal `entctl tenants rbac`
# (the kinds it applies and prunes, the verbs of its calls): tests/test_module.py checks it.
locals {
  cluster_rules = [
    {
      api_groups = [""]
      resources  = ["namespaces"]
      verbs      = ["create", "delete", "list", "patch"]
    },
  ]

  namespaced_rules = [
    {
      api_groups = [""]
      resources  = ["configmaps", "limitranges", "persistentvolumeclaims", "resourcequotas", "secrets", "services"]
      verbs      = ["create", "delete", "list", "patch"]
    },
    {
      api_groups = ["apps"]
      resources  = ["deployments"]
      verbs      = ["create", "delete", "list", "patch"]
    },
    {
      api_groups = ["networking.k8s.io"]
      resources  = ["ingresses", "networkpolicies"]
      verbs      = ["create", "delete", "list", "patch"]
    },
  ]

  service_account_user = "system:serviceaccount:${local.namespace}:${kubernetes_service_account_v1.entcp.metadata[0].name}"
}

# The tenants' namespaces (ent-<slug>) are cluster-scoped objects.
resource "kubernetes_cluster_role_v1" "namespaces" {
  metadata {
    name   = "${var.name}-tenant-namespaces"
    labels = local.labels
  }

  dynamic "rule" {
    for_each = local.cluster_rules
    content {
      api_groups = rule.value.api_groups
      resources  = rule.value.resources
      verbs      = rule.value.verbs
    }
  }
}

# The objects inside the tenants' namespaces. RBAC has no namespace patterns and the
# namespaces are created on demand, so the role is bound cluster-wide; the admission
# policy below keeps the writes inside ent-*.
resource "kubernetes_cluster_role_v1" "tenant_objects" {
  metadata {
    name   = "${var.name}-tenant-objects"
    labels = local.labels
  }

  dynamic "rule" {
    for_each = local.namespaced_rules
    content {
      api_groups = rule.value.api_groups
      resources  = rule.value.resources
      verbs      = rule.value.verbs
    }
  }
}

resource "kubernetes_cluster_role_binding_v1" "entcp" {
  for_each = {
    namespaces     = kubernetes_cluster_role_v1.namespaces.metadata[0].name
    tenant_objects = kubernetes_cluster_role_v1.tenant_objects.metadata[0].name
  }

  metadata {
    name   = each.value
    labels = local.labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = each.value
  }

  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account_v1.entcp.metadata[0].name
    namespace = local.namespace
  }
}

# Refuses any write of the control plane's ServiceAccount outside the ent-* namespaces
# (and on any Namespace not named ent-*).
resource "kubernetes_manifest" "tenant_namespaces_policy" {
  count = var.restrict_to_tenant_namespaces ? 1 : 0

  manifest = {
    apiVersion = "admissionregistration.k8s.io/v1"
    kind       = "ValidatingAdmissionPolicy"
    metadata   = { name = "${var.name}-tenant-namespaces-only", labels = local.labels }
    spec = {
      failurePolicy = "Fail"
      matchConstraints = {
        resourceRules = [{
          apiGroups   = ["", "apps", "networking.k8s.io"]
          apiVersions = ["*"]
          operations  = ["CREATE", "UPDATE", "DELETE"]
          resources   = ["*"]
        }]
      }
      matchConditions = [{
        name       = "control-plane-service-account"
        expression = "request.userInfo.username == '${local.service_account_user}'"
      }]
      validations = [{
        expression = "request.namespace.startsWith('ent-') || (request.resource.resource == 'namespaces' && request.name.startsWith('ent-'))"
        message    = "le plan de contrôle n'écrit que dans les espaces de noms ent-*"
      }]
    }
  }
}

resource "kubernetes_manifest" "tenant_namespaces_policy_binding" {
  count = var.restrict_to_tenant_namespaces ? 1 : 0

  manifest = {
    apiVersion = "admissionregistration.k8s.io/v1"
    kind       = "ValidatingAdmissionPolicyBinding"
    metadata   = { name = "${var.name}-tenant-namespaces-only", labels = local.labels }
    spec = {
      policyName        = kubernetes_manifest.tenant_namespaces_policy[0].manifest.metadata.name
      validationActions = ["Deny"]
    }
  }
}
