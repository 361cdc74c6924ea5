"""Validates rendered kustomize output (scripts/check-deploy.sh renders it).

Each object is checked against the Kubernetes API schemas shipped in kubernetes-validate
(strict: unknown fields fail), KEDA's ScaledObjects against KEDA's schema (check_keda.mjs),
and every rendering against the rules a facematch deployment must keep: one namespace, three
probes and resources on every container, selectors that select something, the scan queue the
workers really consume, the logs listener as compose runs it, GPUs only where CUDA runs.
Prints one line per file; exits 1 on any failure.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml
from kubernetes_validate import utils as kv

NAMESPACE = "facematch"
CRD_KINDS = {"ScaledObject"}  # validated by check_keda.mjs
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
CLUSTER_KINDS = {"Namespace"}
REQUIRED_DEPLOYMENTS = {"facematch-gateway", "facematch-logs", "facematch-worker"}
SECRET = "facematch-secrets"


def scan_queue():
    """The job queue's name as core/ declares it (a prefix is only ever used by tests)."""
    src = open("core/src/amqp/topology.rs", encoding="utf-8").read()
    names = set(re.findall(r'format!\("\{\}(facematch\.scan\.v\d+)"', src))
    if len(names) != 1:
        sys.exit(f"check_manifests: cannot tell the scan queue from topology.rs: {names}")
    return names.pop()


def compose_logs_command(path):
    """`entrypoint` + `command` of compose's logs service."""
    svc = yaml.safe_load(open(path, encoding="utf-8"))["services"]["logs"]
    return list(svc.get("entrypoint", [])) + list(svc.get("command", []))


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_template(obj):
    return obj["spec"]["template"]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


class Checker:
    def __init__(self, versions, queue, logs_command):
        self.versions = versions
        self.queue = queue
        self.logs_command = logs_command
        self.errors = []

    def fail(self, obj, message):
        name = f"{obj['kind']}/{obj['metadata']['name']}" if obj else "-"
        self.errors.append(f"{name}: {message}")

    def schema(self, obj):
        for version in self.versions:
            try:
                kv.validate(obj, version, strict=True)
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                self.fail(obj, f"not valid for Kubernetes {version}: {path}: {e.message}")
            except kv.SchemaNotFoundError as e:
                self.fail(obj, e.message)

    def namespace(self, obj):
        if obj["kind"] in CLUSTER_KINDS:
            if obj["kind"] == "Namespace" and obj["metadata"]["name"] != NAMESPACE:
                self.fail(obj, f"a namespace other than {NAMESPACE}")
        elif obj["metadata"].get("namespace") != NAMESPACE:
            self.fail(obj, f"namespace is {obj['metadata'].get('namespace')!r}, not {NAMESPACE}")

    def workload(self, obj):
        spec = obj["spec"]
        labels = pod_template(obj)["metadata"].get("labels", {})
        if not selects(spec["selector"].get("matchLabels"), labels):
            self.fail(obj, "selector does not match its pod template's labels")
        for c in pod_template(obj)["spec"]["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in c:
                    self.fail(obj, f"container {c['name']} has no {probe}")
            res = c.get("resources", {})
            if not {"cpu", "memory"} <= set(res.get("requests", {})):
                self.fail(obj, f"container {c['name']} requests no cpu or memory")
            if "memory" not in res.get("limits", {}):
                self.fail(obj, f"container {c['name']} has no memory limit")
            gpus = res.get("limits", {}).get("nvidia.com/gpu")
            device = env_of(c).get("FACEMATCH_DEVICE")
            if gpus and device != "cuda":
                self.fail(obj, f"has a GPU but FACEMATCH_DEVICE={device}")
            if device == "cuda" and not gpus:
                self.fail(obj, "FACEMATCH_DEVICE=cuda without an nvidia.com/gpu limit")

    def logs(self, obj):
        if obj["spec"].get("replicas") != 1:
            self.fail(obj, "the logs listener must run exactly one replica (lines would double)")
        c = pod_template(obj)["spec"]["containers"][0]
        if c.get("command") != self.logs_command:
            self.fail(obj, f"command {c.get('command')} differs from compose's {self.logs_command}")
        ready = env_of(c).get("FACEMATCH_READY_FILE")
        probe = c.get("readinessProbe", {}).get("exec", {}).get("command", [])
        if not ready or ready not in probe:
            self.fail(obj, "readiness probe does not test FACEMATCH_READY_FILE")

    def references(self, objs):
        pods = [(o, pod_template(o)["metadata"].get("labels", {}))
                for o in objs if o["kind"] in WORKLOAD_KINDS]
        deployments = {o["metadata"]["name"] for o in objs if o["kind"] == "Deployment"}
        for name in REQUIRED_DEPLOYMENTS - deployments:
            self.fail(None, f"no Deployment {name}")
        for o in objs:
            sel = None
            if o["kind"] == "Service":
                sel = o["spec"].get("selector")
            elif o["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
                key = "selector" if o["kind"] == "PodDisruptionBudget" else "podSelector"
                sel = o["spec"][key].get("matchLabels")
            elif o["kind"] == "ScaledObject":
                target = o["spec"]["scaleTargetRef"]["name"]
                if target not in deployments:
                    self.fail(o, f"scales {target}, which is not a Deployment here")
                for t in o["spec"]["triggers"]:
                    queue = t.get("metadata", {}).get("queueName")
                    if t["type"] == "rabbitmq" and queue != self.queue:
                        self.fail(o, f"watches queue {queue}; the workers consume {self.queue}")
                continue
            else:
                continue
            if not any(selects(sel, labels) for _, labels in pods):
                self.fail(o, f"selector {sel} selects no pod")
        exposed = any(o["kind"] == "Ingress" for o in objs) or any(
            o["kind"] == "Service" and o["spec"].get("type") == "LoadBalancer" for o in objs)
        if not exposed:
            self.fail(None, "the gateway has neither an Ingress nor a LoadBalancer Service")
        secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}
        if SECRET in secrets:
            keys = set(secrets[SECRET].get("data", {})) | set(secrets[SECRET].get("stringData", {}))
            for o, _ in pods:
                for c in pod_template(o)["spec"]["containers"]:
                    for e in c.get("env", []):
                        ref = e.get("valueFrom", {}).get("secretKeyRef")
                        if ref and ref["name"] == SECRET and ref["key"] not in keys:
                            self.fail(o, f"uses key {ref['key']} missing from {SECRET}")

    def file(self, path):
        objs = [o for o in yaml.safe_load_all(open(path, encoding="utf-8")) if o]
        for o in objs:
            if o["kind"] not in CRD_KINDS:
                self.schema(o)
            self.namespace(o)
            if o["kind"] in WORKLOAD_KINDS:
                self.workload(o)
            if o["kind"] == "Deployment" and o["metadata"]["name"] == "facematch-logs":
                self.logs(o)
        self.references(objs)
        return objs


def check_keda(script, scaled_objects):
    """KEDA's schema, from the npm package check-deploy.sh installs (NODE_PATH)."""
    if not scaled_objects:
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(scaled_objects, f)
    try:
        out = subprocess.run(["node", script, f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        return [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubernetes", required=True, help="space-separated versions")
    ap.add_argument("--keda", required=True, help="check_keda.mjs")
    ap.add_argument("--compose", required=True, help="compose file (its logs service)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    versions = args.kubernetes.split()
    queue = scan_queue()
    failed = False
    for path in args.files:
        checker = Checker(versions, queue, compose_logs_command(args.compose))
        objs = checker.file(path)
        scaled = [o for o in objs if o["kind"] == "ScaledObject"]
        checker.errors += check_keda(args.keda, scaled)
        name = os.path.basename(path).removesuffix(".yaml")
        kinds = sorted({o["kind"] for o in objs})
        if checker.errors:
            failed = True
            print(f"check-deploy: {name}: FAILED")
            for e in checker.errors:
                print(f"  {e}")
        else:
            keda = f", {len(scaled)} ScaledObject(s) against KEDA's schema" if scaled else ""
            print(f"check-deploy: {name}: {len(objs)} objects valid for Kubernetes "
                  f"{', '.join(versions)} (strict){keda}; rules hold ({', '.join(kinds)})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
