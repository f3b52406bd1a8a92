"""schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS)."""
import schemathesis


def _raw_bytes(value, header):
    """Generated values as raw bytes: bytes kept, the rest UTF-8, half of them behind `header` (PDF-like)."""
    if isinstance(value, bytes):
        return value
    data = str(value).encode("utf-8")
    return header + data if len(data) % 2 == 0 else data


@schemathesis.serializer("application/pdf")
def pdf(ctx, value):
    """Signed copies are sent as raw bytes: generated values become bytes, half of them PDF-like."""
    return _raw_bytes(value, b"%PDF-1.4\n")


@schemathesis.serializer("application/octet-stream")
def octet_stream(ctx, value):
    """Ticket attachments are sent as raw bytes: generated values become bytes, half of them PDF-like."""
    return _raw_bytes(value, b"%PDF-1.7\n")
