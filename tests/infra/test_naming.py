"""The naming convention keeps every name inside Azure's limits, deterministically."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.config import EstateInputError
from infra.naming import KINDS, Namer, validate

N = Namer("hdc", "prod")
workloads = st.from_regex(r"[a-z][a-z0-9-]{0,45}", fullmatch=True)


def test_caf_pattern_for_ordinary_names() -> None:
    assert N.name("virtual_network", "planning") == "vnet-hdc-planning-prod-uks"
    assert N.name("resource_group", "dr", region="ukwest") == "rg-hdc-dr-prod-ukw"
    assert N.name("virtual_machine", "gis", instance=2) == "vm-hdc-gis-prod-uks-02"


@settings(max_examples=200, deadline=None)
@given(workloads)
def test_storage_and_key_vault_names_always_fit(workload: str) -> None:
    st_name = N.name("storage_account", workload)
    assert re.fullmatch(r"[a-z0-9]{3,24}", st_name)
    kv = N.name("key_vault", workload)
    assert 3 <= len(kv) <= 24 and "--" not in kv and kv[0].isalpha()
    # The same input always gives the same name (state must not churn between runs).
    assert N.name("key_vault", workload) == kv


def test_long_workloads_are_shortened_with_a_hash_so_they_stay_distinct() -> None:
    a = N.name("key_vault", "childrens-social-care")
    b = N.name("key_vault", "childrens-social-work")
    assert len(a) <= 24 and len(b) <= 24
    assert a != b


def test_policy_assignment_names_at_management_group_scope_fit_24() -> None:
    name = N.policy_assignment("deny-management-ports-from-the-internet")
    assert len(name) <= 24
    assert N.policy_assignment("allowed-locations") == "hdc-allowed-locations"


def test_windows_computer_names_fit_netbios() -> None:
    assert len(N.computer_name("childrens-social-care", 3, windows=True)) <= 15
    assert N.computer_name("gis", 1, windows=True) == "gis-01"


@pytest.mark.parametrize(("kind", "name"), [
    ("storage_account", "st-has-hyphens"), ("storage_account", "UPPER"), ("storage_account", "ab"),
    ("key_vault", "1starts-with-digit"), ("key_vault", "kv--double"), ("policy_assignment", "x" * 25),
])
def test_names_azure_would_refuse_are_refused(kind: str, name: str) -> None:
    assert kind in KINDS
    with pytest.raises(EstateInputError):
        validate(kind, name)


def test_connectivity_kinds_use_caf_abbreviations() -> None:
    assert N.name("vpn_site", "civic-centre") == "vst-hdc-civic-centre-prod-uks"
    assert N.name("local_network_gateway", "psn", region="ukwest") == "lgw-hdc-psn-prod-ukw"
    assert N.name("azure_firewall", "connectivity") == "afw-hdc-connectivity-prod-uks"
    assert N.name("managed_identity", "afwp-tls") == "id-hdc-afwp-tls-prod-uks"
    # Azure Firewall names stop at 56 characters: a long workload is shortened with a hash.
    assert len(N.name("azure_firewall", "x" * 80)) <= 56
