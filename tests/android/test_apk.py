"""read_apk against real APKs signed by apksigner (tests/support/apks.py)."""
import zipfile

import pytest

from portal.android.apk import ApkError, read_apk
from tests.support.apks import (COMPONENT, PACKAGE, VERSION_CODE, VERSION_NAME, apks,  # noqa: F401
                                apksigner_checksums, build_apk, lineage_checksums)


def test_v1_only_apk_reads_package_receiver_version_and_apksigners_checksum(apks):
    facts = read_apk(apks.v1.read_bytes())
    assert facts.package == PACKAGE
    assert facts.component_name == COMPONENT
    assert (facts.version_code, facts.version_name) == (VERSION_CODE, VERSION_NAME)
    assert facts.schemes == ("v1",)
    assert [facts.signature_checksum] == apksigner_checksums(apks.v1)
    assert facts.signature_checksum == apks.key_a.checksum


def test_v2_v3_apk_checksum_is_apksigners(apks):
    facts = read_apk(apks.v2v3.read_bytes())
    assert facts.schemes == ("v2", "v3")
    assert [facts.signature_checksum] == apksigner_checksums(apks.v2v3)
    assert facts.component_name == COMPONENT


def test_rotated_key_gives_the_oldest_certificate_of_the_lineage(apks):
    """GET_SIGNATURES answers the lineage's oldest certificate (AOSP PackageInfoUtils), so the
    checksum stays key A's although apksigner verify names key B as the v3 signer."""
    facts = read_apk(apks.rotated.read_bytes())
    lineage = lineage_checksums(apks.rotated)
    assert lineage == [apks.key_a.checksum, apks.key_b.checksum]
    assert apksigner_checksums(apks.rotated) == [apks.key_b.checksum]
    assert facts.signature_checksum == lineage[0]
    assert facts.signature_checksum == read_apk(apks.v2v3.read_bytes()).signature_checksum
    assert facts.schemes == ("v1", "v2", "v3")
    assert (facts.version_code, facts.version_name) == (43, "4.3.0")


def test_other_key_gives_another_checksum(apks):
    facts = read_apk(apks.other_key.read_bytes())
    assert [facts.signature_checksum] == apksigner_checksums(apks.other_key)
    assert facts.signature_checksum != apks.key_a.checksum


def test_apk_without_device_admin_receiver_has_no_component(apks):
    facts = read_apk(apks.no_admin.read_bytes())
    assert facts.component_name is None
    assert facts.package == PACKAGE
    assert [facts.signature_checksum] == apksigner_checksums(apks.no_admin)


def test_receiver_outside_the_package_keeps_its_full_class_name(apks, tmp_path):
    path = build_apk(tmp_path, "outside", key=apks.key_a, receiver="org.vendor.mdm.Admin")
    assert read_apk(path.read_bytes()).component_name == "com.example.companion/org.vendor.mdm.Admin"


def test_checksum_has_no_padding_and_is_url_safe(apks):
    checksum = read_apk(apks.v2v3.read_bytes()).signature_checksum
    assert len(checksum) == 43 and "=" not in checksum and "+" not in checksum


@pytest.mark.parametrize("make", [
    lambda kit, tmp: kit.not_apk.read_bytes(),
    lambda kit, tmp: b"",
    lambda kit, tmp: b"PK\x03\x04 not really a zip",
    lambda kit, tmp: kit.v2v3.read_bytes()[: len(kit.v2v3.read_bytes()) // 2],
], ids=["text", "empty", "zip-magic-only", "truncated"])
def test_a_file_that_is_not_an_apk_is_refused_in_one_sentence(apks, tmp_path, make):
    with pytest.raises(ApkError) as error:
        read_apk(make(apks, tmp_path))
    assert error.value.message.startswith("This file is not an APK")


def test_a_zip_without_manifest_is_not_an_apk(tmp_path):
    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ApkError, match="no AndroidManifest.xml"):
        read_apk(path.read_bytes())


def test_an_unsigned_apk_is_refused(apks, tmp_path):
    signed = zipfile.ZipFile(apks.v2v3)
    path = tmp_path / "unsigned.apk"
    with zipfile.ZipFile(path, "w") as archive:
        for name in signed.namelist():
            if not name.startswith("META-INF/"):
                archive.writestr(name, signed.read(name))
    with pytest.raises(ApkError, match="not signed"):
        read_apk(path.read_bytes())
