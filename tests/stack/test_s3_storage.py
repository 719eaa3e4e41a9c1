"""The storage layer on S3 (moto server on loopback) through an Airflow connection, as the stack uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.support.ports import free_port, service_up

pytestmark = pytest.mark.integration

KEY, SECRET = "moto-access-key", "moto-secret-key"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server, a bucket, and ``aws_default`` pointing at it; yields (boto3 client, bucket)."""
    pytest.importorskip("s3fs", reason="s3:// storage needs apache-airflow-providers-amazon[s3fs]")
    import boto3

    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not service_up("127.0.0.1", port):
        assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
        time.sleep(0.3)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    bucket = f"mlops-test-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    previous = os.environ.get("AIRFLOW_CONN_AWS_DEFAULT")
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({"conn_type": "aws", "login": KEY, "password": SECRET,
                                                         "extra": {"endpoint_url": endpoint,
                                                                   "region_name": "us-east-1"}})
    yield client, bucket
    if previous is None:
        os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)
    else:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = previous
    proc.terminate()
    proc.wait(timeout=20)


def keys(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_partition_written_through_the_hook_is_s3_objects_and_reads_back(s3):
    import pandas as pd
    from mlops_pack.core.storage import list_partitions, read_partition, write_partition
    from mlops_pack.hooks.storage import PipelineStorageHook

    client, bucket = s3
    hook = PipelineStorageHook("demo", storage_root=f"s3://{bucket}/mlops", conn_id="aws_default")
    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5]})
    manifest = write_partition(hook.partition("validated", "2026-11-02"), frame)
    written = keys(client, bucket)
    assert written == [f"mlops/demo/validated/2026-11-02/data-{manifest['version']}.parquet",
                       "mlops/demo/validated/2026-11-02/manifest.json"]  # no temporary objects left behind
    again = hook.path(manifest["folder"])  # a URI from a manifest or an asset event resolves back
    pd.testing.assert_frame_equal(read_partition(again), frame)
    assert [m["version"] for m in list_partitions(hook.area("validated"))] == [manifest["version"]]


def test_a_failed_write_leaves_the_old_object_and_no_partial_upload(s3):
    from mlops_pack.core.storage import atomic_writer, write_bytes_atomic
    from mlops_pack.hooks.storage import PipelineStorageHook

    client, bucket = s3
    target = PipelineStorageHook("demo", storage_root=f"s3://{bucket}/mlops", conn_id="aws_default").state("x.bin")
    write_bytes_atomic(target, b"old")
    for size in (10, 12 * 2**20):  # s3fs buffers up to its block size (50 MiB) before uploading anything
        with pytest.raises(KeyError), atomic_writer(target) as fh:
            fh.write(b"n" * size)
            raise KeyError("the writer failed")
        assert target.read_bytes() == b"old"
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
