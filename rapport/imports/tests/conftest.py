import io

import pytest

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _imports_sandbox(settings, tmp_path):
    """Uploads under a per-test media root; background tasks run inline."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TASKS = IMMEDIATE
    return settings


def upload(client, content: bytes, kind: str = "people", name: str = "contacts.csv"):
    f = io.BytesIO(content)
    f.name = name
    return client.post("/imports/", {"kind": kind, "file": f})


def job_id_from(response) -> int:
    assert response.status_code == 302, response.content[:500]
    return int(response["Location"].rstrip("/").split("/")[-1])


def xlsx_bytes(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
