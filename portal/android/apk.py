"""Read what the QR payload needs from a Companion APK: package, device-admin receiver, version
and the signature checksum Android checks (android-qr.md §5), with androguard."""
import base64
import hashlib
import struct
from dataclasses import dataclass

BIND_DEVICE_ADMIN = "android.permission.BIND_DEVICE_ADMIN"
DEVICE_ADMIN_META_DATA = "android.app.device_admin"
# APK Signature Scheme v3's "proof of rotation" attribute (apksig's
# V3SchemeConstants.PROOF_OF_ROTATION_ATTR_ID): the SigningCertificateLineage, oldest first.
_PROOF_OF_ROTATION = 0x3BA06F8C


@dataclass(frozen=True)
class ApkFacts:
    package: str
    component_name: str | None      # "pkg/.Receiver", as ComponentName.flattenToShortString
    version_code: int | None
    version_name: str | None
    signature_checksum: str         # URL-safe base64, no padding, of SHA-256 of the certificate
    schemes: tuple[str, ...]        # ("v1",), ("v2", "v3"), ...


class ApkError(Exception):
    """The file cannot be read as a signed APK; .message is one sentence for the admin."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def read_apk(data: bytes) -> ApkFacts:
    """Read an APK's facts. Raises ApkError when it is no APK, names no package or is unsigned.

    The signatures are read, not verified: the phone verifies them when it installs the APK.
    """
    apk = _parse(data)
    package = apk.get_package()
    if not package:
        raise ApkError("This APK's manifest names no package.")
    schemes = _schemes(apk)
    certificate = _checked_certificate(apk)
    if certificate is None:
        raise ApkError("This APK is not signed; sign it (apksigner sign) and upload it again.")
    return ApkFacts(package=package, component_name=_admin_component(apk, package),
                    version_code=_int_or_none(apk.get_androidversion_code()),
                    version_name=apk.get_androidversion_name() or None,
                    signature_checksum=certificate_checksum(certificate), schemes=schemes)


def certificate_checksum(certificate_der: bytes) -> str:
    """DEVICE_ADMIN_SIGNATURE_CHECKSUM of a DER certificate: URL-safe base64 of its SHA-256,
    without "=" (the form the quick start's example and the payload use)."""
    digest = hashlib.sha256(certificate_der).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _parse(data: bytes):
    # androguard is imported here, not at module level: it takes about half a second to
    # import and only this reader needs it. It logs through loguru; keep that quiet.
    from loguru import logger
    logger.disable("androguard")
    from androguard.core.apk import APK

    if not data.startswith(b"PK"):
        raise ApkError("This file is not an APK.")
    try:
        apk = APK(data, raw=True)
        if not apk.is_valid_APK():
            raise ApkError("This file is not an APK: it has no AndroidManifest.xml.")
        apk.get_androidversion_code()  # a manifest androguard could not decode fails here
    except ApkError:
        raise
    except Exception as error:  # a third-party parser on an uploaded file fails in many ways
        raise ApkError("This file is not an APK, or it is damaged.") from error
    return apk


def _schemes(apk) -> tuple[str, ...]:
    checks = (("v1", apk.is_signed_v1), ("v2", apk.is_signed_v2), ("v3", apk.is_signed_v3),
              ("v3.1", apk.is_signed_v31))
    try:
        return tuple(name for name, signed in checks if signed())
    except Exception as error:  # a damaged signing block
        raise ApkError("This APK's signature block is damaged.") from error


def _checked_certificate(apk) -> bytes | None:
    """The DER certificate whose SHA-256 ManagedProvisioning compares with the checksum.

    ManagedProvisioning hashes `Signature.toByteArray()` of each entry of
    `getPackageArchiveInfo(apk, GET_SIGNATURES).signatures` (ChecksumUtils
    doesASignatureHashMatch / VerifyAdminPackageTask, android-qr.md [S8]). For an APK whose v3
    signer carries a rotation lineage the platform fills that array with the lineage's OLDEST
    certificate only: AOSP PackageInfoUtils.generate (PackageParser.generatePackageInfo before
    Android 12), "Package has included signing certificate rotation information. Return the
    oldest cert so that programmatic checks keep working even if unaware of key rotation."
    Android 7-8 do not read v3 and use the v2 (or v1) signer, which apksigner signs with that
    same oldest key. Without a lineage the array holds the signer's certificate (v3, else v2,
    else v1), the one `apksigner verify --print-certs` prints.
    """
    try:
        v3_certificates = (apk.get_certificates_der_v31(), apk.get_certificates_der_v3())
        # Those calls parsed the v3.1 and v3 signers; androguard (pinned) keeps them, with the
        # signed data's raw attributes, in these two lists and has no public accessor.
        for signers in (apk._v31_signing_data, apk._v3_signing_data):
            for signer in signers or ():
                oldest = _lineage_oldest(signer.signed_data.additional_attributes or b"")
                if oldest is not None:
                    return oldest
        for certificates in (*v3_certificates, apk.get_certificates_der_v2()):
            if certificates:
                return certificates[0]
        certificates = apk.get_certificates_v1()
        return certificates[0].dump() if certificates else None
    except ApkError:
        raise
    except Exception as error:
        raise ApkError("This APK's signature block is damaged.") from error


def _lineage_oldest(attributes: bytes) -> bytes | None:
    """The first certificate of the v3 signer's SigningCertificateLineage, if it has one.

    androguard hands over the signed data's attributes but does not read this one; its layout
    (apksig SigningCertificateLineage / V3SigningCertificateLineage.readSigningCertificateLineage):
    attributes = (uint32 length, uint32 id, value)*; value = uint32 version,
    (uint32 length, node)*; node = uint32 length, signed data = (uint32 length, certificate,
    uint32 signature algorithm), then flags, algorithm and the parent's signature.
    """
    for attribute_id, value in _length_prefixed_items(attributes, with_id=True):
        if attribute_id != _PROOF_OF_ROTATION:
            continue
        nodes = list(_length_prefixed_items(value[4:]))
        if not nodes:
            raise ApkError("This APK's signing-key rotation record is empty.")
        signed_data = _length_prefixed(nodes[0], 0)[0]
        return _length_prefixed(signed_data, 0)[0]
    return None


def _length_prefixed_items(data: bytes, with_id: bool = False):
    offset = 0
    while offset < len(data):
        item, offset = _length_prefixed(data, offset)
        if with_id:
            if len(item) < 4:
                raise ApkError("This APK's signature block is damaged.")
            yield struct.unpack_from("<I", item)[0], item[4:]
        else:
            yield item


def _length_prefixed(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise ApkError("This APK's signature block is damaged.")
    (length,) = struct.unpack_from("<I", data, offset)
    start = offset + 4
    if start + length > len(data):
        raise ApkError("This APK's signature block is damaged.")
    return data[start:start + length], start + length


def _admin_component(apk, package: str) -> str | None:
    """The receiver guarded by BIND_DEVICE_ADMIN (preferring one that declares the device-admin
    meta-data when there are several), in the short "pkg/.Class" form."""
    guarded = [tag for tag in apk.find_tags("receiver")
               if apk.get_value_from_tag(tag, "permission") == BIND_DEVICE_ADMIN]
    with_meta = [tag for tag in guarded
                 if any(apk.get_value_from_tag(meta, "name") == DEVICE_ADMIN_META_DATA
                        for meta in tag.iter("meta-data"))]
    for tag in with_meta + guarded:
        name = apk.get_value_from_tag(tag, "name")
        if name:
            return _short_component(package, _class_name(package, name))
    return None


def _class_name(package: str, name: str) -> str:
    # PackageParser.buildClassName: ".X" and a name without a dot are relative to the package.
    if name.startswith("."):
        return package + name
    return name if "." in name else f"{package}.{name}"


def _short_component(package: str, class_name: str) -> str:
    # ComponentName.flattenToShortString.
    if class_name.startswith(package + "."):
        return f"{package}/{class_name[len(package):]}"
    return f"{package}/{class_name}"


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
