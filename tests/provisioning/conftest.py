import pytest

from portal.settings import network_profiles
from portal.settings.companion import seed_example_companion


@pytest.fixture
def profile(db):
    """The bulk tests' network profile: a school's WPA Wi-Fi (and the example Companion)."""
    seed_example_companion()
    return network_profiles.save(network_profiles.ProfileValues(
        name="School Wi-Fi", network="wifi", wifi_ssid="School", wifi_security="WPA",
        wifi_password="correct-horse"), actor="test")
