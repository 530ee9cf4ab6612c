"""Run the Pulumi program offline, under Pulumi's mock runtime, and return the resource graph.

This stands in for `pulumi preview` where neither the Pulumi CLI nor Azure exists: the Python SDK
registers every resource with an in-process mock monitor instead of the engine. The mocks return
fake ARM-style ids and echo the inputs back as outputs (plus the resource's own name), so every
`Output` resolves (preview=False) and the program runs exactly as it would against Azure, minus
the provider's server-side defaults.

security_checks never imports this module (it would load the Pulumi and Azure SDKs and the mock
runtime's process-global state into its own process): it runs `python -m infra.plan_cli`, which
writes the plan and its violations as one JSON document. Inside infra (plan_cli, the tests, the
benchmark):

    plan = run_plan(loaded, InfraConfig(...))     # -> Plan
    plan.resources                                # [PlannedResource(type, name, urn, parent, inputs, id, ...)]
    plan.by_type("azure-native:network:VirtualNetwork")
    plan.origin(resource)                         # (estate file, line) the resource came from
    evaluate(plan)                                # policy violations, the rules seeing secrets unredacted

Secrets: `PlannedResource.inputs` (what is printed and stored) has every secret replaced by
`[secret]`; the policy rules read `policy_inputs`, the same inputs with secrets unwrapped, so a
rule can see inside a property that is secret only because it contains a key (a VPN connection's
link settings). `policy_inputs` never leaves the process: `as_dict` and `repr` leave it out, and
`evaluate` masks any secret value a violation message might quote.

The mock runtime is process-global state: runs are serialised with a lock, and each run resets
the runtime (a fresh root stack) so several plans in one process (tests) do not see each other.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from .policy.pack import RULES
from .policy.rules import PolicyResource, Rule, Violation, check_resource

if TYPE_CHECKING:
    from pulumi.runtime import Mocks

    from security_checks.model.loader import LoadedEstate

    from .config import InfraConfig
    from .program import Built

_LOCK = threading.Lock()


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program registered: what `pulumi preview` would list."""

    type: str                  # the type token, e.g. azure-native:network:VirtualNetwork
    name: str                  # the Pulumi logical name
    urn: str
    parent: str | None         # the parent's URN (None: the stack itself)
    inputs: dict[str, Any]     # the inputs as the provider receives them (camelCase, Outputs resolved)
    id: str | None             # the fake physical id (None for component resources)
    custom: bool               # False for ComponentResources
    provider: str | None = None  # the explicit provider reference, when one was given
    # The inputs with secrets unwrapped, for the policy rules only: never printed or stored.
    policy_inputs: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # Top-level input -> URNs it was made from (what the engine gives CrossGuard at preview).
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    dependencies: tuple[str, ...] = field(default=(), repr=False, compare=False)  # depends_on and inputs, as URNs

    @property
    def short_type(self) -> str:
        """`network:VirtualNetwork` for `azure-native:network:VirtualNetwork`."""
        return self.type.split(":", 1)[1] if self.type.count(":") >= 2 else self.type

    @property
    def tags(self) -> dict[str, str]:
        tags = self.inputs.get("tags")
        return dict(tags) if isinstance(tags, dict) else {}

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "urn": self.urn, "parent": self.parent, "id": self.id,
                "custom": self.custom, "provider": self.provider, "inputs": self.inputs}


@dataclass
class Plan:
    """The resource graph of one offline run of the program."""

    stack: str
    resources: list[PlannedResource]
    origins: dict[str, tuple[str | int, ...]] = field(default_factory=dict)  # logical name -> estate path
    loaded: LoadedEstate | None = None
    built: Built | None = None

    def by_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def by_urn(self, urn: str) -> PlannedResource | None:
        return self._urns().get(urn)

    def by_id(self, resource_id: str) -> PlannedResource | None:
        return self._ids().get(resource_id.lower())

    def children(self, parent: PlannedResource) -> list[PlannedResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def ancestors(self, r: PlannedResource) -> list[PlannedResource]:
        out = []
        urns = self._urns()
        cur = urns.get(r.parent) if r.parent else None
        while cur is not None:
            out.append(cur)
            cur = urns.get(cur.parent) if cur.parent else None
        return out

    def origin_path(self, r: PlannedResource) -> tuple[str | int, ...] | None:
        """The estate path (e.g. ("lob_systems", 3)) the resource, or its nearest ancestor, was built from."""
        for candidate in (r, *self.ancestors(r)):
            if candidate.name in self.origins:
                return self.origins[candidate.name]
        return None

    def origin(self, r: PlannedResource) -> tuple[str, int] | None:
        """(file, line) in the estate the resource came from, when known."""
        path = self.origin_path(r)
        if path is None or self.loaded is None:
            return None
        return self.loaded.where(path)

    def violation_origin(self, v: Violation) -> tuple[str, int] | None:
        """(file, line) a violation is blamed on: the line declaring its subject (a prefix the resource
        carries) where the program recorded one (`Context.track_detail`), else the resource's origin."""
        r = self.by_urn(v.urn)
        if r is None:
            return None
        if v.subject and self.loaded is not None:
            for candidate in (r, *self.ancestors(r)):
                path = self.origins.get(f"{candidate.name}#{v.subject}")
                if path is not None:
                    return self.loaded.where(path)
        return self.origin(r)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.type for r in self.resources).items()))

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "resource_count": len(self.resources), "counts": self.counts(),
                "resources": [r.as_dict() for r in self.resources]}

    def _urns(self) -> dict[str, PlannedResource]:
        cache = self.__dict__.get("_urn_cache")
        if cache is None or len(cache) != len(self.resources):
            cache = {r.urn: r for r in self.resources}
            self.__dict__["_urn_cache"] = cache
        return cache

    def _ids(self) -> dict[str, PlannedResource]:
        cache = self.__dict__.get("_id_cache")
        if cache is None:
            cache = {r.id.lower(): r for r in self.resources if r.id}
            self.__dict__["_id_cache"] = cache
        return cache


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


# Most azure-native resources take their own name as `<lowerCamelTypeName>Name`; these do not.
_NAME_INPUT = {
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:compute:VirtualMachine": "vmName",
    "azure-native:web:WebApp": "name",
    "azure-native:web:AppServicePlan": "name",
    "azure-native:management:ManagementGroup": "groupId",
    "azure-native:authorization:PolicyAssignment": "policyAssignmentName",
    "azure-native:privatedns:PrivateRecordSet": "relativeRecordSetName",
    "azure-native:dns:RecordSet": "relativeRecordSetName",
    "azure-native:monitor:DiagnosticSetting": "name",
    "azure-native:consumption:Budget": "budgetName",
    "azure-native:recoveryservices:ProtectionPolicy": "policyName",
    "azure-native:recoveryservices:ProtectedItem": "protectedItemName",
}


def _physical_name(typ: str, name: str, inputs: dict[str, Any]) -> str:
    key = _NAME_INPUT.get(typ) or _camel(typ.rsplit(":", 1)[-1]) + "Name"
    value = inputs.get(key)
    return value if isinstance(value, str) and value else name


def _fake_id(typ: str, physical: str, inputs: dict[str, Any]) -> str:
    """An ARM-shaped id, so rules that join resources by id (diagnostics, backup) work as on Azure."""
    parts = typ.split(":")
    namespace = parts[1] if len(parts) == 3 else "pulumi"
    kind = parts[-1]
    if typ == "azure-native:management:ManagementGroup":
        return f"/providers/Microsoft.Management/managementGroups/{physical}"
    scope = inputs.get("scope")
    if isinstance(scope, str) and scope.startswith("/"):
        return f"{scope}/providers/mock.{namespace}/{kind}/{physical}"
    rg = inputs.get("resourceGroupName")
    base = "/subscriptions/00000000-0000-0000-0000-000000000000"
    if isinstance(rg, str) and typ != "azure-native:resources:ResourceGroup":
        base += f"/resourceGroups/{rg}"
    if typ == "azure-native:resources:ResourceGroup":
        return f"{base}/resourceGroups/{physical}"
    return f"{base}/providers/Microsoft.{namespace}/{kind}/{physical}"


def _fake_guid(*parts: str) -> str:
    """A stable, obviously fake GUID for outputs Azure would assign (principal and client ids)."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, "estate-mock:" + ":".join(parts)))


def make_mocks() -> Any:
    """A pulumi.runtime.Mocks that gives fake ids and echoes inputs (plus `name`) as outputs."""
    import pulumi

    class EstateMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            physical = _physical_name(args.typ, args.name, args.inputs)
            outputs = dict(args.inputs)
            outputs.setdefault("name", physical)
            if args.typ == "random:index/randomPassword:RandomPassword":
                # A fixed stand-in, marked secret by the SDK like the real one: it never reaches a plan file.
                outputs["result"] = "mock-password-" + args.name
            if args.typ == "azure-native:managedidentity:UserAssignedIdentity":
                # Azure assigns these; the program hands principal_id to a role assignment.
                outputs.setdefault("principalId", _fake_guid(args.name, "principal"))
                outputs.setdefault("clientId", _fake_guid(args.name, "client"))
            identity = outputs.get("identity")
            if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
                # Azure gives a system-assigned identity a principal; role assignments are made for it.
                outputs["identity"] = {**identity, "principalId": _fake_guid(args.name, "system-principal")}
                identity = outputs["identity"]
            if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
                # Inputs list the identities' ids; Azure answers with a map of id -> principal.
                outputs["identity"] = {**identity, "userAssignedIdentities": {
                    str(i): {} for i in identity["userAssignedIdentities"]}}
            if args.typ.startswith("pulumi:providers:"):
                return f"{args.name}-provider-id", outputs
            fake = _fake_id(args.typ, physical, args.inputs)
            outputs.setdefault("id", fake)
            return fake, outputs

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            # The program makes no invokes (it must build offline); echo, so a stray one is visible.
            return dict(args.args), None

    return EstateMocks()


class _InputsTap:
    """Stands between the mock monitor and the mocks, keeping (per thread) the inputs the monitor
    deserialised for the last `new_resource`, so the recording monitor need not decode them again."""

    def __init__(self, mocks: Any) -> None:
        self._mocks = mocks
        self.last = threading.local()

    def new_resource(self, args: Any) -> Any:
        self.last.inputs = args.inputs
        return self._mocks.new_resource(args)

    def __getattr__(self, name: str) -> Any:   # call, register_transform, ...: the mocks' own
        return getattr(self._mocks, name)


def _recording_monitor(mocks: Any, sink: list[PlannedResource]) -> Any:
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import MockMonitor

    tap = _InputsTap(mocks)

    class RecordingMonitor(MockMonitor):
        """The SDK's mock monitor, keeping each registration's parent and inputs for the plan."""

        def RegisterResource(self, request: Any) -> Any:
            tap.last.inputs = None
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                # The monitor decoded request.object for the mocks (which only read it, never
                # change it): the same value rpc.deserialize_properties(request.object) returns.
                inputs = tap.last.inputs
                if inputs is None:
                    inputs = rpc.deserialize_properties(request.object)
                sink.append(PlannedResource(
                    type=request.type, name=request.name, urn=response.urn,
                    parent=request.parent or None, inputs=_plain(inputs),
                    id=response.id or None, custom=bool(request.custom),
                    provider=request.provider or None, policy_inputs=_plain(inputs, reveal=True),
                    property_dependencies={k: tuple(v.urns) for k, v in request.propertyDependencies.items()
                                           if v.urns},
                    dependencies=tuple(request.dependencies)))
            return response

    return RecordingMonitor(cast("Mocks", tap))


_SIG_KEY = "4dabf18193072939515e22adb298388d"      # pulumi.runtime.rpc._special_sig_key
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (a marker, not a secret); pulumi.runtime.rpc._special_secret_sig
REDACTED = "[secret]"


def _plain(value: Any, *, reveal: bool = False) -> Any:
    """Inputs as JSON-able plain data, references as URNs; secrets redacted (never into a plan
    file), or with `reveal` unwrapped (for the policy rules only)."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _plain(value.get("value"), reveal=True) if reveal else REDACTED
        return {k: _plain(v, reveal=reveal) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list | tuple):
        return [_plain(v, reveal=reveal) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)   # the wire format has only doubles; ports and counts read back as ints
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    urn = getattr(value, "urn", None)
    return f"<resource {urn}>" if urn is not None else repr(value)


def _drop_aliases(args: Any) -> Any:
    import pulumi

    if not args.opts.aliases:
        return None
    opts = args.opts._copy()
    opts.aliases = None
    return pulumi.ResourceTransformationResult(args.props, opts)


# Cyclic-GC thresholds for the offline run (see _offline_speedups): a young collection every 100,000
# net allocations instead of 700, and the older generations 10x less often than that.
_RUN_GC_THRESHOLD = (100_000, 100, 100)


@contextmanager
def _offline_speedups() -> Iterator[None]:
    """Skip two SDK chores that only serve the real engine, for the duration of an offline run.

    Per resource, the SDK walks the Python stack to tell the engine where the resource was declared
    (for its error messages) and sends debug log lines; under mocks nobody reads either, and on a
    large estate they are a fifth of the run. Restored on exit, so a real program is unaffected.

    The run also allocates millions of small, mostly long-lived objects (the azure-native modules
    it imports, Outputs, futures, asyncio handles), and with the default thresholds the cyclic
    garbage collector rescans the whole growing heap over and over: about 40% of the run's CPU on
    the benchmark's estate. Collections are made rarer, not disabled (cyclic garbage is still
    reclaimed, peak memory is unchanged); only when memory is reclaimed changes, never what runs.
    The thresholds are restored on exit.
    """
    import gc

    import pulumi.log
    import pulumi.runtime.resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    saved = (sdk_resource._get_stack_trace, pulumi.log.debug)
    saved_threshold = gc.get_threshold()
    sdk_resource._get_stack_trace = lambda: source_pb2.StackTrace()
    pulumi.log.debug = lambda *args, **kwargs: None
    if saved_threshold[0]:   # 0: automatic collection is off already; leave it so
        gc.set_threshold(*(max(a, b) for a, b in zip(saved_threshold, _RUN_GC_THRESHOLD, strict=False)))
    try:
        yield
    finally:
        sdk_resource._get_stack_trace, pulumi.log.debug = saved
        gc.set_threshold(*saved_threshold)


def run_under_mocks(program: Callable[[], Any], *, project: str = "estate", stack: str = "demo") -> tuple[
        list[PlannedResource], Any]:
    """Run `program` (a function that registers resources) under the mock runtime.

    Returns the registered resources, in registration order, and what `program` returned.
    preview=False, so every Output resolves and `apply` callbacks run as on a real `up`.
    """
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    with _LOCK, _offline_speedups():
        sink: list[PlannedResource] = []
        mocks = make_mocks()
        settings.ROOT.set(None)  # a fresh root stack per run: no URN collisions with an earlier plan
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False,
                                 monitor=_recording_monitor(mocks, sink))
        # azure-native declares an alias per historical API version (dozens per resource), and the
        # SDK resolves each into a URN through Outputs: most of the offline run's time, for nothing,
        # since aliases only matter when renaming resources in existing state. Offline, drop them.
        pulumi.runtime.register_stack_transformation(_drop_aliases)
        result: dict[str, Any] = {}

        def body() -> None:
            result["value"] = program()

        _sync_await(run_pulumi_func(body))
        return sink, result.get("value")


def run_plan(loaded: LoadedEstate, config: InfraConfig | None = None) -> Plan:
    """Build the whole estate program (tenancy, hub, LOB systems, WAN, Wi-Fi) under mocks."""
    from .config import InfraConfig
    from .program import build

    cfg = config or InfraConfig()
    resources, built = run_under_mocks(lambda: build(loaded, cfg), stack=cfg.stack)
    return Plan(stack=cfg.stack, resources=resources, origins=dict(built.origins) if built else {},
                loaded=loaded, built=built)


def evaluate_plan(plan: Plan, rules: Sequence[Rule]) -> list[Violation]:
    """The rules' violations over the plan's custom resources, as the plan's inputs show them
    (`evaluate` is the one to call: it lets the rules see secrets and masks them in messages)."""
    resources = [r for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    out: list[Violation] = []
    for r in resources:
        for rule, message in check_resource(rules, r.type, r.inputs):
            out.append(Violation(rule.check_id, r.type, r.name, r.urn, message))
    views = [PolicyResource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, id=r.id,
                            property_dependencies=r.property_dependencies) for r in resources]
    for rule in rules:
        if rule.stack is None:
            continue
        for res, message in rule.stack(views):
            out.append(Violation(rule.check_id, res.type, res.name, res.urn, message, res.subject))
    return out


def evaluate(plan: Plan, rules: Iterable[Rule] | None = None) -> list[Violation]:
    """Every policy violation in the plan (the rules of infra/policy/pack.py, unless given).

    The rules see the unredacted inputs; what comes back is printed and stored, so any secret value
    a message quotes is masked.
    """
    view = Plan(stack=plan.stack, origins=plan.origins, loaded=plan.loaded, built=plan.built, resources=[
        replace(r, inputs=r.policy_inputs) if r.policy_inputs is not None else r for r in plan.resources])
    violations = evaluate_plan(view, list(rules) if rules is not None else RULES)
    secrets = sorted({v for r in plan.resources for v in _secret_values(r.inputs, r.policy_inputs)},
                     key=len, reverse=True)
    if not secrets:
        return violations
    return [replace(v, message=_mask(v.message, secrets)) if any(s in v.message for s in secrets) else v
            for v in violations]


# Inside a secret property, the values that are the secret itself (a shared key, a password, a
# RADIUS secret, a Key Vault secret's value), not the settings beside them (names, IKE proposals).
_SECRET_KEY = re.compile(r"(key|password|passphrase|secret|psk|token|value)$", re.IGNORECASE)
_MIN_SECRET = 4   # shorter would mask ordinary words in a message


def _secret_values(redacted: Any, revealed: Any) -> Iterator[str]:
    """The secret strings in `revealed` where `redacted` says [secret]."""
    if redacted == REDACTED and revealed != REDACTED:
        if isinstance(revealed, str):
            if len(revealed) >= _MIN_SECRET:
                yield revealed
        else:
            yield from _secret_leaves(revealed)
    elif isinstance(redacted, dict) and isinstance(revealed, dict):
        for k, v in redacted.items():
            yield from _secret_values(v, revealed.get(k))
    elif isinstance(redacted, list) and isinstance(revealed, list):
        for a, b in zip(redacted, revealed, strict=False):
            yield from _secret_values(a, b)


def _secret_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                if _SECRET_KEY.search(k) and len(v) >= _MIN_SECRET:
                    yield v
            else:
                yield from _secret_leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _secret_leaves(v)


def _mask(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, REDACTED)
    return message
