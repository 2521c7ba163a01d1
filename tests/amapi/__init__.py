"""The Android Management API stand-in itself, driven by the real Google client libraries."""
