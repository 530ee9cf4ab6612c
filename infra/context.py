"""What every part of the program shares: the estate, names, providers, tags, diagnostics, origins.

One `Context` is made by `program.build` and passed to each concern (tenancy, hub, LOB systems,
WAN, Wi-Fi). It holds:
- `estate` / `loaded`: the estate model and where each value came from (for violation messages);
- `namer`: the one naming convention (infra/naming.py);
- `provider(placement_or_subscription)`: the azure-native provider for a subscription, so each
  resource lands in the subscription its landing zone says;
- `tags(...)`: the required tags (information asset owner, data classification, cost centre,
  system) plus tier, environment and landing zone;
- `diagnostics(resource, ...)`: a DiagnosticSetting sending the resource's logs and metrics to the
  central Log Analytics workspace (once tenancy has created it);
- `track(logical_name, estate_path)`: records which estate entry a resource (and its children)
  came from, so a policy violation can name the estate file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from security_checks.model.loader import LoadedEstate, Path_
from security_checks.model.schema import Estate, Subscription, SubscriptionPlacement

from .config import EstateInputError, InfraConfig
from .naming import Namer

# Tag keys the policy requires on every taggable resource (see infra/policy/rules.py).
TAG_OWNER = "information-asset-owner"
TAG_CLASSIFICATION = "data-classification"
TAG_COST_CENTRE = "cost-centre"
TAG_SYSTEM = "system"
REQUIRED_TAGS = (TAG_OWNER, TAG_CLASSIFICATION, TAG_COST_CENTRE, TAG_SYSTEM)
TAG_TIER = "tier"
TAG_LANDING_ZONE = "landing-zone"
TAG_ENVIRONMENT = "environment"


def vault_properties(tenant_id: str) -> Any:
    """Key Vault properties every vault gets: RBAC, soft delete, purge protection, no public access."""
    return {
        "tenant_id": tenant_id, "sku": {"family": "A", "name": "standard"},
        "enable_rbac_authorization": True, "enable_soft_delete": True, "soft_delete_retention_in_days": 90,
        "enable_purge_protection": True, "public_network_access": "Disabled",
        "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
    }


@dataclass
class Context:
    loaded: LoadedEstate
    config: InfraConfig
    namer: Namer
    providers: dict[str, pulumi.ProviderResource] = field(default_factory=dict)  # subscription name -> provider
    origins: dict[str, Path_] = field(default_factory=dict)
    workspace_id: pulumi.Output[str] | None = None        # the central Log Analytics workspace
    workspace_name: str | None = None
    workspace_resource_group: str | None = None
    private_zones: dict[str, Any] = field(default_factory=dict)  # privatelink zones by group id (lob.shared_dns)
    features: dict[tuple[str, str], Any] = field(default_factory=dict)  # (subscription, feature) -> registration

    @property
    def estate(self) -> Estate:
        return self.loaded.estate

    # -- subscriptions and providers --------------------------------------------------------------

    def subscription(self, placement_or_name: str) -> Subscription:
        """A subscription by name, or the first one with that placement (e.g. "connectivity")."""
        subs = self.estate.azure.subscriptions
        for s in subs:
            if s.name == placement_or_name:
                return s
        for s in subs:
            if s.placement.value == placement_or_name:
                return s
        raise EstateInputError(f"azure.subscriptions: no subscription named or placed {placement_or_name!r}")

    def has_placement(self, placement: SubscriptionPlacement | str) -> bool:
        value = placement.value if isinstance(placement, SubscriptionPlacement) else placement
        return any(s.placement.value == value for s in self.estate.azure.subscriptions)

    def provider(self, placement_or_name: str) -> pulumi.ProviderResource:
        """The azure-native provider for a subscription (made once, on first use)."""
        import pulumi_azure_native as azure_native

        sub = self.subscription(placement_or_name)
        if sub.name not in self.providers:
            self.providers[sub.name] = azure_native.Provider(
                f"azure-{sub.name}", subscription_id=sub.id, tenant_id=self.estate.azure.tenant_id,
                location=self.estate.azure.primary_region)
        return self.providers[sub.name]

    def opts(self, placement_or_name: str, *, parent: pulumi.Resource | None = None,
             depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.provider(placement_or_name), parent=parent,
                                      depends_on=depends_on)

    def feature(self, placement_or_name: str, namespace: str, feature: str) -> Any:
        """A subscription feature registration (made once per subscription and feature).

        Some settings are refused until a feature is registered in the subscription that uses them:
        encryption at host needs `Microsoft.Compute/EncryptionAtHost` ("Use the Azure portal to
        enable end-to-end encryption using encryption at host", Prerequisites: "You must enable the
        feature for your subscription before you can use encryption at host",
        https://learn.microsoft.com/en-us/azure/virtual-machines/disks-enable-host-based-encryption-portal).
        Resources that need it depend on the registration.
        """
        import pulumi_azure_native.features as features

        sub = self.subscription(placement_or_name)
        key = (sub.name, f"{namespace}/{feature}")
        if key not in self.features:
            logical = f"feature-{sub.name}-{feature.lower()}"
            self.features[key] = features.SubscriptionFeatureRegistration(
                logical, provider_namespace=namespace, feature_name=feature, properties={},
                opts=pulumi.ResourceOptions(provider=self.provider(sub.name)))
            self.track(logical, ("azure", "subscriptions", self.estate.azure.subscriptions.index(sub)))
        return self.features[key]

    # -- tags, origins, diagnostics ---------------------------------------------------------------

    def tags(self, *, system: str, owner: str, classification: str, cost_centre: str,
             landing_zone: str, tier: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        tags = {
            TAG_OWNER: owner,
            TAG_CLASSIFICATION: classification,
            TAG_COST_CENTRE: cost_centre,
            TAG_SYSTEM: system,
            TAG_LANDING_ZONE: landing_zone,
            TAG_ENVIRONMENT: self.config.environment,
            "managed-by": "pulumi",
        }
        if tier:
            tags[TAG_TIER] = tier
        tags.update(extra or {})
        return tags

    def platform_tags(self, system: str, placement: str) -> dict[str, str]:
        """Tags for platform resources: owned by the head of ICT, OFFICIAL, the subscription's cost centre."""
        owner = next((c.name for c in self.estate.organisation.contacts if c.role == "head-of-ict"), "Head of ICT")
        sub = self.subscription(placement)
        return self.tags(system=system, owner=owner, classification="OFFICIAL", cost_centre=sub.cost_centre,
                         landing_zone=sub.placement.value)

    def track(self, logical_name: str, path: Path_) -> None:
        self.origins[logical_name] = tuple(path)

    def track_detail(self, logical_name: str, subject: str, path: Path_) -> None:
        """Records the estate entry one part of a resource came from (a prefix among several it
        carries), so a violation about that part names its own line (`PolicyResource.subject`)."""
        self.origins[f"{logical_name}#{subject}"] = tuple(path)

    def diagnostics(self, target: Any, logical_name: str, placement_or_name: str, *,
                    parent: pulumi.Resource | None = None, logs: bool = True, metrics: bool = True) -> Any:
        """Send `target`'s resource logs (allLogs) and metrics to the central workspace."""
        import pulumi_azure_native.monitor as monitor

        if self.workspace_id is None:
            raise RuntimeError("diagnostics requested before the central Log Analytics workspace exists")
        return monitor.DiagnosticSetting(
            f"{logical_name}-diag", name="diag-to-central-log", resource_uri=target.id,
            workspace_id=self.workspace_id,
            logs=[{"category_group": "allLogs", "enabled": True}] if logs else None,
            metrics=[{"category": "AllMetrics", "enabled": True}] if metrics else None,
            opts=pulumi.ResourceOptions(provider=self.provider(placement_or_name), parent=parent or target))
