"""The directory tests' fixtures: configs for the Entra-shaped test provider (tests/oidc), and
Azure's per-process caches forgotten around each test."""
import dataclasses

import pytest

from portal.directory import azure


@pytest.fixture(autouse=True)
def _forget_azure_caches():
    """Discovery, keys and msal applications are cached per process; tests start cold."""
    azure.forget_caches()
    yield
    azure.forget_caches()


@pytest.fixture
def entra_config(oidc_provider) -> azure.AzureConfig:
    """A single-tenant Entra configuration: the provider stands in for login.microsoftonline.com."""
    return azure.AzureConfig(client_id=oidc_provider.client_id,
                             client_secret=oidc_provider.client_secret,
                             tenant=oidc_provider.tenant, instance=oidc_provider.origin,
                             ca_bundle=oidc_provider.ca_file, timeout=5)


@pytest.fixture
def generic_config(oidc_provider) -> azure.AzureConfig:
    """A generic OpenID provider, named by its issuer."""
    return azure.AzureConfig(client_id=oidc_provider.client_id,
                             client_secret=oidc_provider.client_secret,
                             authority=oidc_provider.issuer, ca_bundle=oidc_provider.ca_file,
                             timeout=5)


@pytest.fixture
def multi_tenant_config(entra_config) -> azure.AzureConfig:
    """Entra's "organizations" authority, whose discovered issuer is a {tenantid} template."""
    return dataclasses.replace(entra_config, tenant="organizations")
