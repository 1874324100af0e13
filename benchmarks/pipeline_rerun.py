"""Wall time of a no-change re-run of the deploy pipeline.

`python -m benchmarks.pipeline_rerun`: deploys once, then times a second `deploy` with nothing changed
(image build from cache, registry lookup, zip, S3 HEAD, recipe comparison, current deployment), and writes
build/benchmarks/pipeline_rerun.json. S3 and the ECR API are moto on loopback, the registry is Debian's, and
greengrassv2 answers through botocore's Stubber (no local control plane exists yet), so the Greengrass calls
cost no network time here.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import boto3
from botocore.stub import Stubber

from scripts import engine, pipeline, recipes
from tests.conftest import SEED
from tests.scripts.test_pipeline import (
    GROUP,
    PUB,
    REGION,
    SUB,
    expect_current,
    expect_deployment_and_success,
    expect_new_component,
    expect_unchanged_component,
)
from tests.support import moto_iot
from tests.support import registry as local_registry

OUT = Path("build/benchmarks/pipeline_rerun.json")


def main() -> None:
    moto, endpoint = moto_iot.start()
    folder = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    registry_process, host = local_registry.start(folder)
    try:
        session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        s3, ecr = session.client("s3", endpoint_url=endpoint), session.client("ecr", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
        ecr.create_repository(repositoryName="bench/subscriber")
        outputs = {
            "region": REGION,
            "account_id": "123456789012",
            "repository_url": f"{host}/bench/subscriber",
            "artifact_bucket": "bench-artifacts",
            "artifact_prefix": "artifacts",
            "thing_group_arn": GROUP,
            "thing_group_name": "edgeml-cores",
        }
        gg = boto3.client("greengrassv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(gg)
        stub.activate()
        clients = pipeline.Clients(gg, s3, ecr, engine.ensure_engine(progress=lambda m: None))
        options = pipeline.Options(SEED / "xgboost_wine_quality.json", poll_interval=0)
        workdir = Path(tempfile.mkdtemp(prefix="bench-deploy-"))

        expect_new_component(stub, SUB, "1.0.0")
        expect_new_component(stub, PUB, "1.0.0")
        expect_current(stub, None, {})
        expect_deployment_and_success(stub, "d-1", {PUB: "1.0.0", SUB: "1.0.0"})
        started = time.perf_counter()
        first = pipeline.deploy(outputs, clients, options, lambda m: None, lambda d: None, workdir)
        first_seconds = time.perf_counter() - started

        values = {
            "subscriber": (SUB, {"image": first["image"]}),
            "publisher": (PUB, {"artifact_uri": first["artifact"]}),
        }
        for kind, (name, extra) in values.items():
            expect_unchanged_component(
                stub,
                name,
                recipes.render_component(kind, {**extra, "component_name": name, "component_version": "1.0.0"}),
            )
        expect_current(stub, "d-1", {PUB: "1.0.0", SUB: "1.0.0"})
        started = time.perf_counter()
        second = pipeline.deploy(outputs, clients, options, lambda m: None, lambda d: None, workdir)
        rerun_seconds = time.perf_counter() - started
        stub.assert_no_pending_responses()
        assert not second["image_pushed"] and not second["artifact_uploaded"] and second["deployment"] is None
    finally:
        registry_process.terminate()
        moto.stop()
    result = {
        "first_deploy_s": round(first_seconds, 1),
        "no_change_rerun_s": round(rerun_seconds, 1),
        "rerun_created": "nothing (no push, no upload, no component version, no deployment)",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"first deploy: {result['first_deploy_s']} s   no-change re-run: {result['no_change_rerun_s']} s "
        f"(created nothing)   written to {OUT}"
    )


if __name__ == "__main__":
    main()
