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

  # The watch on the owned Deployments (`entctl serve` and `entctl operator`): a failed
  # rollout or a `kubectl scale` queues its tenant at once.
  watch_rules = [
    {
      api_groups = ["apps"]
      resources  = ["deployments"]
      verbs      = ["list", "watch"]
    },
  ]

  # `entctl operator`: watch the EntTenant resources, add and remove its finalizer (a
  # patch of the resource), read one again after a conflicting status write (get), write
  # their status subresource.
  operator_rules = [
    {
      api_groups = ["entcp.education.fr"]
      resources  = ["enttenants"]
      verbs      = ["get", "list", "patch", "watch"]
    },
    {
      api_groups = ["entcp.education.fr"]
      resources  = ["enttenants/status"]
      verbs      = ["patch"]
    },
  ]

  service_account_user = "system:serviceaccount:${local.namespace}:${kubernetes_service_account_v1.entcp.metadata[0].name}"
}

# `namespaces`: the tenants' namespaces (ent-<slug>), cluster-scoped objects.
# `tenant_objects`: the objects inside them. RBAC has no namespace patterns and the
# namespaces are created on demand, so this role is bound cluster-wide; the admission
# policy below keeps the writes inside ent-*.
resource "kubernetes_cluster_role_v1" "entcp" {
  for_each = {
    namespaces       = local.cluster_rules
    tenant_objects   = local.namespaced_rules
    deployment_watch = local.watch_rules
    operator         = local.operator_rules
  }

  metadata {
    name   = "${var.name}-${replace(each.key, "_", "-")}"
    labels = local.labels
  }

  dynamic "rule" {
    for_each = each.value
    content {
      api_groups = rule.value.api_groups
      resources  = rule.value.resources
      verbs      = rule.value.verbs
    }
  }
}

resource "kubernetes_cluster_role_binding_v1" "entcp" {
  for_each = kubernetes_cluster_role_v1.entcp

  metadata {
    name   = each.value.metadata[0].name
    labels = local.labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = each.value.metadata[0].name
  }

  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account_v1.entcp.metadata[0].name
    namespace = local.namespace
  }
}

# Refuses any write of the control plane's ServiceAccount outside the ent-* namespaces
# (and on any Namespace not named ent-*): the policy and its binding.
locals {
  admission_policy_name = "${var.name}-tenant-namespaces-only"
  admission = {
    policy = {
      kind = "ValidatingAdmissionPolicy"
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
    binding = {
      kind = "ValidatingAdmissionPolicyBinding"
      spec = { policyName = local.admission_policy_name, validationActions = ["Deny"] }
    }
  }
}

resource "kubernetes_manifest" "tenant_namespaces_only" {
  for_each = var.restrict_to_tenant_namespaces ? local.admission : {}

  manifest = {
    apiVersion = "admissionregistration.k8s.io/v1"
    kind       = each.value.kind
    metadata   = { name = local.admission_policy_name, labels = local.labels }
    spec       = each.value.spec
  }
}
