"""Offline validation of the Kubernetes manifests in ``deploy/`` and the Vault policies.

Each overlay is rendered with ``kubectl kustomize``, every object is checked against the
Kubernetes OpenAPI schema with ``kubernetes-validate`` (strict: unknown fields fail), and the
security properties the deployment promises are asserted on the rendered objects. The checks are
plain functions returning a list of problems, so the last group of tests can prove each of them
catches the violation it exists for.

Both tools are required: a missing one fails the run with the install command, it never skips.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.30.0"  # oldest supported cluster version; grpc probes are GA since 1.27
GRPC_SERVICES = ("auth", "workspaces", "keys", "credentials")
SERVICES = (*GRPC_SERVICES, "edge")
VAULT_CLIENTS = ("auth", "workspaces", "credentials")
AUTOSCALED = ("edge", "keys")
CRD_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
PURGED = ("workspaces", "keys", "credentials")  # the services with a `purge` command
REDIS_CLIENTS = ("edge", "keys")
TRUST_DOMAIN = "railguard.local"
METRICS_PORT = 9090
# secret setting -> (Secret, key) it is projected from, per service
SECRET_FILES: dict[str, dict[str, tuple[str, str]]] = {
    "auth": {"DATABASE_URL": ("auth-database", "url")},
    "workspaces": {"DATABASE_URL": ("workspaces-database", "url")},
    "keys": {
        "DATABASE_URL": ("keys-database", "url"),
        "KEYS_PEPPERS": ("keys-peppers", "peppers"),
        "REDIS_URL": ("keys-redis", "url"),
    },
    "credentials": {
        "DATABASE_URL": ("credentials-database", "url"),
        "CREDENTIALS_WEBHOOK_PEPPER": ("credentials-webhook-pepper", "pepper"),
    },
    "edge": {"REDIS_URL": ("edge-redis", "url")},
}
KUBECTL_FALLBACK = Path("/usr/lib/google-cloud-sdk/bin/kubectl")

Obj = dict[str, Any]


# ----------------------------------------------------------------------------------------------
# Tools and rendering


def find_kubectl() -> str:
    """The kubectl binary (with built-in kustomize), or a test failure saying how to get one."""
    found = shutil.which("kubectl") or (
        str(KUBECTL_FALLBACK) if KUBECTL_FALLBACK.exists() else None
    )
    if found is None:
        pytest.fail(
            "kubectl is required to render deploy/ (kubectl kustomize); install it, e.g. "
            "`apt-get install kubectl` (Debian package from google-cloud-cli, kubectl >= 1.27)",
            pytrace=False,
        )
    return found


def load_validator() -> Any:
    """The kubernetes_validate module, or a test failure saying how to install it."""
    try:
        import kubernetes_validate  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail(
            "kubernetes-validate is required to validate deploy/ offline: "
            "`pip install kubernetes-validate==1.37.0`",
            pytrace=False,
        )
    return kubernetes_validate


@functools.cache
def _render(target: str) -> tuple[Obj, ...]:
    proc = subprocess.run(
        [find_kubectl(), "kustomize", str(DEPLOY / target)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": os.devnull},
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {target} failed:\n{proc.stderr}", pytrace=False)
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(target: str) -> list[Obj]:
    """The rendered objects of a kustomization (a fresh copy each call, safe to mutate)."""
    return copy.deepcopy(list(_render(target)))


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objs(overlay: str) -> list[Obj]:
    return render(f"overlays/{overlay}")


def of_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def by_name(objs: Iterable[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in of_kind(objs, kind)}


def app_of(deployment: Obj) -> str:
    return str(deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"])


# ----------------------------------------------------------------------------------------------
# Checks: each returns the problems found (empty = fine)


def schema_problems(objs: Iterable[Obj], validator: Any) -> list[str]:
    problems = []
    for o in objs:
        ident = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
        if (o.get("apiVersion"), o.get("kind")) in CRD_KINDS:
            continue  # no upstream schema; shape checked by cert_manager_problems
        try:
            validator.validate(o, KUBERNETES_VERSION, strict=True)
        except validator.SchemaNotFoundError:
            problems.append(
                f"{ident}: no schema for {o.get('apiVersion')} in k8s {KUBERNETES_VERSION}"
            )
        except validator.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{ident}: {where}: {exc.message}")
    return problems


def container_problems(objs: Iterable[Obj]) -> list[str]:
    problems = []
    for dep in of_kind(objs, "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        name = dep["metadata"]["name"]
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("runAsUser", 0) == 0:
            problems.append(f"{name}: pod must set runAsNonRoot and a non-zero runAsUser")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile must be RuntimeDefault")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            problems.append(f"{name}: host namespaces are forbidden")
        if int(pod.get("terminationGracePeriodSeconds", 30)) <= 10:
            problems.append(
                f"{name}: terminationGracePeriodSeconds must exceed the app's 10 s grace"
            )
        if not pod.get("topologySpreadConstraints") and not pod.get("affinity", {}).get(
            "podAntiAffinity"
        ):
            problems.append(f"{name}: replicas must be spread (topologySpreadConstraints)")
        for c in pod.get("initContainers", []) + pod["containers"]:
            cname = f"{name}/{c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is False:
                problems.append(f"{cname}: runs as root")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation must be false")
            if sc.get("privileged"):
                problems.append(f"{cname}: privileged")
            if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc["capabilities"].get("add"):
                problems.append(f"{cname}: capabilities must drop ALL and add none")
            limits = c.get("resources", {}).get("limits", {})
            requests = c.get("resources", {}).get("requests", {})
            if not {"cpu", "memory"} <= limits.keys() or not {"cpu", "memory"} <= requests.keys():
                problems.append(f"{cname}: cpu and memory requests and limits are required")
            elif _mebibytes(limits["memory"]) > 512:
                problems.append(
                    f"{cname}: memory limit {limits['memory']} is far above the 80 MB target"
                )
            for probe in ("readinessProbe", "livenessProbe"):
                spec = c.get(probe, {})
                is_grpc = "grpc" in spec
                is_https = spec.get("httpGet", {}).get("scheme") == "HTTPS"
                if not (is_grpc or is_https):
                    problems.append(f"{cname}: {probe} must be a native grpc or an HTTPS probe")
    return problems


def _mebibytes(quantity: str) -> float:
    units = {
        "Ki": 1 / 1024,
        "Mi": 1,
        "Gi": 1024,
        "K": 1e3 / 2**20,
        "M": 1e6 / 2**20,
        "G": 1e9 / 2**20,
    }
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity))
    assert m, f"unparsed quantity {quantity!r}"
    return float(m.group(1)) * (units[m.group(2)] if m.group(2) else 1 / 2**20)


def service_account_problems(objs: Iterable[Obj]) -> list[str]:
    problems = []
    accounts = by_name(objs, "ServiceAccount")
    seen: dict[str, str] = {}
    for dep in of_kind(objs, "Deployment"):
        name = dep["metadata"]["name"]
        sa = dep["spec"]["template"]["spec"].get("serviceAccountName", "default")
        if sa == "default" or sa not in accounts:
            problems.append(f"{name}: must run as its own declared ServiceAccount, not {sa!r}")
        if sa in seen:
            problems.append(f"{name}: shares ServiceAccount {sa!r} with {seen[sa]}")
        seen[sa] = name
    return problems


def token_problems(objs: Iterable[Obj]) -> list[str]:
    """Only the Vault clients get a service-account token, and only one bound to Vault."""
    problems = []
    for sa in of_kind(objs, "ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{sa['metadata']['name']}: automount must be false")
    for dep in of_kind(objs, "Deployment"):
        name, pod = dep["metadata"]["name"], dep["spec"]["template"]["spec"]
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: automountServiceAccountToken must be false")
        tokens = [
            src["serviceAccountToken"]
            for vol in pod.get("volumes", [])
            for src in vol.get("projected", {}).get("sources", [])
            if "serviceAccountToken" in src
        ]
        if app_of(dep) in VAULT_CLIENTS:
            if [t.get("audience") for t in tokens] != ["vault"]:
                problems.append(f"{name}: needs exactly one projected token with audience 'vault'")
            elif int(tokens[0].get("expirationSeconds", 3600)) > 3600:
                problems.append(f"{name}: Vault token must expire within an hour")
        elif tokens:
            problems.append(f"{name}: does not use Vault and must not get a service-account token")
    return problems


def secret_problems(objs: Iterable[Obj]) -> list[str]:
    return [
        f"Secret/{s['metadata']['name']}: literal data must not live in the manifests"
        for s in of_kind(objs, "Secret")
        if s.get("data") or s.get("stringData")
    ]


def default_deny_problems(objs: Iterable[Obj]) -> list[str]:
    for np in of_kind(objs, "NetworkPolicy"):
        spec = np["spec"]
        if (
            spec.get("podSelector") == {}
            and set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}
            and not spec.get("ingress")
            and not spec.get("egress")
        ):
            return []
    return ["no default-deny NetworkPolicy (podSelector {}, Ingress+Egress, no rules)"]


def availability_problems(objs: Iterable[Obj], *, min_replicas: int) -> list[str]:
    problems = []
    pdbs = of_kind(objs, "PodDisruptionBudget")
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objs, "HorizontalPodAutoscaler")
    }
    for dep in of_kind(objs, "Deployment"):
        name, labels = dep["metadata"]["name"], dep["spec"]["template"]["metadata"]["labels"]
        if not any(_selects(p["spec"]["selector"], labels) for p in pdbs):
            problems.append(f"{name}: no PodDisruptionBudget")
        if app_of(dep) in AUTOSCALED:
            hpa = hpas.get(name)
            if hpa is None:
                problems.append(f"{name}: must be autoscaled")
            elif hpa["spec"].get("minReplicas", 1) < min_replicas:
                problems.append(f"{name}: HPA minReplicas below {min_replicas}")
        elif dep["spec"].get("replicas", 1) < min_replicas:
            problems.append(f"{name}: fewer than {min_replicas} replicas")
    return problems


def certificate_problems(objs: Iterable[Obj]) -> list[str]:
    """One CA-issued certificate per service; identity = name; mounted where settings say."""
    problems = []
    certs = {c["spec"]["commonName"]: c for c in of_kind(objs, "Certificate")}
    issuers = by_name(objs, "Issuer")
    for dep in of_kind(objs, "Deployment"):
        svc, pod = app_of(dep), dep["spec"]["template"]["spec"]
        cert = certs.get(svc)
        if cert is None:
            problems.append(f"{svc}: no Certificate with commonName {svc!r}")
            continue
        ns = cert["metadata"]["namespace"]
        wanted = {svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"}
        if set(cert["spec"].get("dnsNames", [])) != wanted:
            problems.append(f"{svc}: dnsNames must be exactly {sorted(wanted)}")
        spiffe = f"spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/{pod.get('serviceAccountName')}"
        if cert["spec"].get("uris") != [spiffe] or pod.get("serviceAccountName") != svc:
            problems.append(f"{svc}: the certificate's only URI SAN must be {spiffe}")
        if not {"server auth", "client auth"} <= set(cert["spec"].get("usages", [])):
            problems.append(f"{svc}: certificate usages must include server auth and client auth")
        issuer = issuers.get(cert["spec"]["issuerRef"]["name"], {})
        if "ca" not in issuer.get("spec", {}):
            problems.append(f"{svc}: certificate must be issued by the internal CA Issuer")
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        if secrets.get(mounts.get("/etc/railguard/tls", "")) != cert["spec"]["secretName"]:
            problems.append(
                f"{svc}: {cert['spec']['secretName']} is not mounted at /etc/railguard/tls"
            )
    return problems


def cert_manager_problems(objs: Iterable[Obj]) -> list[str]:
    """The schema-less CRDs: the fields cert-manager requires, with the right types."""
    problems = []
    for o in objs:
        spec, ident = o.get("spec", {}), f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Issuer" and len({"ca", "selfSigned", "vault", "acme"} & spec.keys()) != 1:
            problems.append(f"{ident}: exactly one issuer type is required")
        if o["kind"] == "Certificate":
            if not isinstance(spec.get("secretName"), str) or not spec.get("issuerRef", {}).get(
                "name"
            ):
                problems.append(f"{ident}: secretName and issuerRef.name are required")
            if not (spec.get("commonName") or spec.get("dnsNames")):
                problems.append(f"{ident}: needs a commonName or dnsNames")
        if o["kind"] == "PodMonitor":
            endpoints = spec.get("podMetricsEndpoints")
            if (
                not spec.get("selector")
                or not endpoints
                or not all(e.get("port") for e in endpoints)
            ):
                problems.append(f"{ident}: selector and podMetricsEndpoints[].port are required")
    return problems


def settings_problems(objs: Iterable[Obj]) -> list[str]:
    """Each Deployment starts its own service with the settings that service reads."""
    problems = []
    config = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind(objs, "ConfigMap")}
    for dep in of_kind(objs, "Deployment"):
        svc, c = app_of(dep), dep["spec"]["template"]["spec"]["containers"][0]
        env: dict[str, Any] = {}
        for ref in c.get("envFrom", []):
            env.update(config.get(ref["configMapRef"]["name"], {}))
        env.update({e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])})
        if c.get("command") != ["python", "-m", f"{svc}_service"]:
            problems.append(f"{svc}: command must be python -m {svc}_service")
        if env.get("RAILGUARD_SERVICE_NAME") != svc:
            problems.append(f"{svc}: RAILGUARD_SERVICE_NAME must be {svc!r}")
        for var, file in (("CERT", "tls.crt"), ("KEY", "tls.key"), ("CA", "ca.crt")):
            if env.get(f"RAILGUARD_TLS_{var}") != f"/etc/railguard/tls/{file}":
                problems.append(
                    f"{svc}: RAILGUARD_TLS_{var} must point into the mounted certificate"
                )
        for peer in GRPC_SERVICES:
            want = f"dns:///{peer}:50051"  # the headless Service: every pod, balanced by the client
            if env.get(f"RAILGUARD_{peer.upper()}_ADDR") != want:
                problems.append(f"{svc}: RAILGUARD_{peer.upper()}_ADDR must be {want}")
        if env.get("RAILGUARD_TRUST_DOMAIN") != TRUST_DOMAIN:
            problems.append(f"{svc}: RAILGUARD_TRUST_DOMAIN must be {TRUST_DOMAIN}")
        if env.get("RAILGUARD_METRICS_LISTEN") != f"0.0.0.0:{METRICS_PORT}":
            problems.append(f"{svc}: RAILGUARD_METRICS_LISTEN must be 0.0.0.0:{METRICS_PORT}")
        kms = env.get("RAILGUARD_KMS_URL")
        if svc in VAULT_CLIENTS:
            if kms != f"vault://vault.vault.svc:8200/transit/{svc}?auth=kubernetes&role={svc}":
                problems.append(f"{svc}: RAILGUARD_KMS_URL must use its own key and role")
        elif kms is not None:
            problems.append(f"{svc}: must not be configured for Vault")
        for name, value in env.items():
            if re.search(r"(URL|PASSWORD|TOKEN|SECRET)$", name) and isinstance(value, str):
                if "@" in value or "password" in value.lower():
                    problems.append(f"{svc}: {name} carries a literal credential")
        problems += secret_file_problems(dep, env)
    return problems


def _projected_secrets(pod: Obj) -> dict[str, tuple[str, str]]:
    """mount path of each file -> (Secret, key) it projects, for every container mount."""
    files: dict[str, tuple[str, str]] = {}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        for m in c.get("volumeMounts", []):
            for src in volumes.get(m["name"], {}).get("projected", {}).get("sources", []):
                for item in src.get("secret", {}).get("items", []):
                    files[f"{m['mountPath']}/{item['path']}"] = (src["secret"]["name"], item["key"])
    return files


def secret_file_problems(workload: Obj, env: dict[str, Any]) -> list[str]:
    """Secrets only as files: each secret setting's _FILE names a projected Secret item."""
    svc = workload["metadata"]["labels"]["app.kubernetes.io/name"]
    pod = _pod_spec(workload)
    problems = [
        f"{svc}: {name} comes from a Secret as an environment variable; use {name}_FILE"
        for c in pod["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
        for name in [e["name"]]
    ]
    files = _projected_secrets(pod)
    wanted = dict(SECRET_FILES.get(svc, {}))
    if workload["kind"] != "Deployment":  # jobs: the database only
        wanted = {k: v for k, v in wanted.items() if k == "DATABASE_URL"}
    for name, source in wanted.items():
        path = env.get(f"RAILGUARD_{name}_FILE")
        if not isinstance(path, str) or files.get(path) != source:
            problems.append(f"{svc}: RAILGUARD_{name}_FILE must name the projected {source}")
    for name in env:
        base = name.removeprefix("RAILGUARD_").removesuffix("_FILE")
        if name.endswith("_FILE") and base not in wanted:
            problems.append(f"{svc}: {name} is not a secret this service needs")
    return problems


def _pod_spec(workload: Obj) -> Obj:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: Obj = spec["template"]["spec"]
    return pod


def image_problems(objs: Iterable[Obj], *, release: bool) -> list[str]:
    images = {
        c["image"]
        for d in objs
        if d["kind"] in {"Deployment", "CronJob", "Job"}
        for c in _pod_spec(d)["containers"]
    }
    problems = [] if len(images) == 1 else [f"all services run one image, found {sorted(images)}"]
    for image in images:
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and (not tag or tag == "latest"):
            problems.append(f"{image}: needs an explicit tag or digest")
        if release and not re.fullmatch(r"\d+\.\d+\.\d+.*", tag) and "@sha256:" not in image:
            problems.append(f"{image}: a release needs a version tag or digest")
    return problems


# ----------------------------------------------------------------------------------------------
# NetworkPolicy evaluation (the subset of the semantics these manifests use)

NAMESPACE = "railguard"
Endpoint = tuple[str | None, dict[str, str], str | None]  # namespace, pod labels, IP


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], ep: Endpoint) -> bool:
    ns, labels, ip = ep
    if "ipBlock" in peer:
        if ip is None:  # pod IPs are not modelled; these manifests use ipBlock for external hosts
            return False
        addr = ipaddress.ip_address(ip)
        block = peer["ipBlock"]
        excluded = any(addr in ipaddress.ip_network(e) for e in block.get("except", []))
        return addr in ipaddress.ip_network(block["cidr"]) and not excluded
    if ns is None:
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns}):
            return False
    elif ns != NAMESPACE:
        return False
    return _selects(peer.get("podSelector", {}), labels)


def _rule_allows(rule: dict[str, Any], peers_key: str, ep: Endpoint, port: int, proto: str) -> bool:
    peers = rule.get(peers_key)
    if peers and not any(_peer_matches(p, ep) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(
        p.get("protocol", "TCP") == proto and p.get("port") in (None, port) for p in ports
    )


def _direction_allows(
    policies: list[Obj], pod: Endpoint, direction: str, peer: Endpoint, port: int, proto: str
) -> bool:
    if pod[0] != NAMESPACE:
        return True  # outside the namespace: not governed by these manifests
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [
        p
        for p in policies
        if direction in p["spec"].get("policyTypes", [])
        and _selects(p["spec"]["podSelector"], pod[1])
    ]
    if not selecting:
        return True
    return any(
        _rule_allows(rule, peers_key, peer, port, proto)
        for p in selecting
        for rule in p["spec"].get(rules_key) or []
    )


def allowed_flows(objs: list[Obj], endpoints: dict[str, Endpoint]) -> set[tuple[str, str, str]]:
    """Every (source, destination, port/proto) the policies let through among the endpoints."""
    policies = of_kind(objs, "NetworkPolicy")
    ports = [(53, "UDP"), (53, "TCP"), (443, "TCP"), (5432, "TCP"), (6379, "TCP"), (8200, "TCP"),
             (8443, "TCP"), (9090, "TCP"), (50051, "TCP"), (50052, "TCP")]  # fmt: skip
    flows = set()
    for src_name, src in endpoints.items():
        for dst_name, dst in endpoints.items():
            if src_name == dst_name or NAMESPACE not in (src[0], dst[0]):
                continue  # only flows with a Railguard pod at one end are governed here
            for port, proto in ports:
                if _direction_allows(
                    policies, src, "Egress", dst, port, proto
                ) and _direction_allows(policies, dst, "Ingress", src, port, proto):
                    flows.add((src_name, dst_name, f"{port}/{proto}"))
    return flows


def _pod(svc: str, component: str) -> Endpoint:
    return (
        NAMESPACE,
        {"app.kubernetes.io/name": svc, "app.kubernetes.io/component": component},
        None,
    )


ENDPOINTS: dict[str, Endpoint] = {
    **{svc: _pod(svc, "server") for svc in SERVICES},  # the serving pods
    **{f"{svc}-migrate": _pod(svc, "migrate") for svc in GRPC_SERVICES},
    **{f"{svc}-purge": _pod(svc, "purge") for svc in PURGED},
    "other-pod": (NAMESPACE, {"app.kubernetes.io/name": "debug"}, None),
    "vault": ("vault", {"app.kubernetes.io/name": "vault"}, None),
    "kube-dns": ("kube-system", {"k8s-app": "kube-dns"}, None),
    "prometheus": ("monitoring", {"app.kubernetes.io/name": "prometheus"}, None),
    "other-ns-pod": ("default", {"app": "x"}, None),
    "postgres": (None, {}, "10.20.0.7"),
    "redis": (None, {}, "10.20.1.7"),
    "internet": (None, {}, "203.0.113.9"),
}


def pods_of(svc: str) -> list[str]:
    """Every modelled pod running as ``svc`` (its servers and its jobs share its identity)."""
    return [n for n, ep in ENDPOINTS.items() if ep[0] == NAMESPACE and ep[1].get(_NAME) == svc]


_NAME = "app.kubernetes.io/name"


def expected_flows(overlay: str) -> set[tuple[str, str, str]]:
    """The flows the code needs (servicekit.flows for gRPC) and nothing else."""
    from servicekit.flows import FLOWS, GRPC_PORT

    inside = [name for name, ep in ENDPOINTS.items() if ep[0] == NAMESPACE]
    outside = [name for name, ep in ENDPOINTS.items() if ep[0] != NAMESPACE]
    flows = {(src, "edge", "8443/TCP") for src in outside}
    flows |= {(pod, "kube-dns", f"53/{p}") for pod in inside for p in ("UDP", "TCP")}
    flows |= {(pod, f.callee, f"{GRPC_PORT}/TCP") for f in FLOWS for pod in pods_of(f.caller)}
    flows |= {(pod, "postgres", "5432/TCP") for svc in GRPC_SERVICES for pod in pods_of(svc)}
    flows |= {(pod, "vault", "8200/TCP") for svc in VAULT_CLIENTS for pod in pods_of(svc)}
    flows |= {(svc, "redis", "6379/TCP") for svc in REDIS_CLIENTS}
    flows |= {("prometheus", svc, f"{METRICS_PORT}/TCP") for svc in SERVICES}
    if overlay == "dev":  # dev leaves the external hosts' addresses open (port-only rules)
        flows |= {
            (pod, ext, "5432/TCP")
            for svc in GRPC_SERVICES
            for pod in pods_of(svc)
            for ext in outside
        }
        flows |= {(svc, ext, "6379/TCP") for svc in REDIS_CLIENTS for ext in outside}
    return flows


# ----------------------------------------------------------------------------------------------
# Vault policies

POLICY_DIR = DEPLOY / "vault" / "policies"
_PATH_RE = re.compile(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}')


def parse_policy(text: str) -> dict[str, set[str]]:
    """path -> capabilities of a policy written in the one-block-per-path shape used here."""
    body = re.sub(r"#[^\n]*", "", text)
    rules: dict[str, set[str]] = {}
    for path, caps in _PATH_RE.findall(body):
        rules.setdefault(path, set()).update(re.findall(r'"([a-z]+)"', caps))
    leftover = _PATH_RE.sub("", body).strip()
    if leftover:
        raise ValueError(f"unparsed policy text: {leftover[:80]!r}")
    return rules


def vault_policy_problems(policies: dict[str, dict[str, set[str]]]) -> list[str]:
    problems = []
    expected = {"auth", "workspaces", "credentials", "rewrap", "key-admin"}
    if set(policies) != expected:
        problems.append(f"policies must be exactly {sorted(expected)}, found {sorted(policies)}")
    everywhere_forbidden = {"sudo", "delete", "list", "deny", "patch"}
    for name, rules in policies.items():
        for path, caps in rules.items():
            if "*" in path or "+" in path:
                problems.append(f"{name}: {path}: no wildcards")
            if caps & everywhere_forbidden:
                problems.append(
                    f"{name}: {path}: {sorted(caps & everywhere_forbidden)} not allowed"
                )
            if path.startswith("transit/export") or path.startswith("transit/backup"):
                problems.append(f"{name}: {path}: key material must never leave Vault")
    for svc in VAULT_CLIENTS:
        want = {
            f"transit/encrypt/{svc}": {"update"},
            f"transit/decrypt/{svc}": {"update"},
            f"transit/keys/{svc}": {"read"},
        }
        if policies.get(svc) != want:
            problems.append(
                f"{svc}: must be exactly encrypt/decrypt (update) + read on its own key"
            )
    for path, caps in policies.get("rewrap", {}).items():
        if not (path.startswith("transit/rewrap/") and caps == {"update"}) and not (
            path.startswith("transit/keys/") and caps == {"read"}
        ):
            problems.append(f"rewrap: {path} {sorted(caps)}: rewrap and key read only")
    for path in policies.get("key-admin", {}):
        if re.match(r"transit/(encrypt|decrypt|rewrap|datakey)/", path):
            problems.append(f"key-admin: {path}: admins must not handle data")
    return problems


def load_policies() -> dict[str, dict[str, set[str]]]:
    return {p.stem: parse_policy(p.read_text()) for p in sorted(POLICY_DIR.glob("*.hcl"))}


# ----------------------------------------------------------------------------------------------
# The tests


def test_overlays_render_and_pass_strict_schema_validation(objs: list[Obj]) -> None:
    assert schema_problems(objs, load_validator()) == []
    assert cert_manager_problems(objs) == []
    assert {app_of(d) for d in of_kind(objs, "Deployment")} == set(SERVICES)


def test_every_container_is_non_root_read_only_capability_free_bounded_and_probed(
    objs: list[Obj],
) -> None:
    assert container_problems(objs) == []


def test_every_service_runs_as_its_own_service_account(objs: list[Obj]) -> None:
    assert service_account_problems(objs) == []


def test_only_vault_clients_get_a_token_and_it_is_audience_bound(objs: list[Obj]) -> None:
    assert token_problems(objs) == []


def test_no_secret_holds_literal_data(objs: list[Obj]) -> None:
    assert secret_problems(objs) == []


def test_a_default_deny_network_policy_exists(objs: list[Obj]) -> None:
    assert default_deny_problems(objs) == []


def test_network_policies_allow_exactly_the_documented_flows(objs: list[Obj], overlay: str) -> None:
    allowed = allowed_flows(objs, ENDPOINTS)
    expected = expected_flows(overlay)
    assert sorted(allowed - expected) == [], "flows allowed that should be denied"
    assert sorted(expected - allowed) == [], "flows denied that should be allowed"


def test_each_service_has_its_own_ca_issued_mtls_identity(objs: list[Obj]) -> None:
    assert certificate_problems(objs) == []


def test_each_deployment_is_wired_to_its_own_settings(objs: list[Obj]) -> None:
    assert settings_problems(objs) == []


def test_images_are_pinned(objs: list[Obj], overlay: str) -> None:
    assert image_problems(objs, release=overlay == "prod") == []


def test_availability_dev() -> None:
    assert availability_problems(render("overlays/dev"), min_replicas=1) == []


def test_availability_prod_survives_a_node_drain() -> None:
    objs = render("overlays/prod")
    assert availability_problems(objs, min_replicas=3) == []
    for pdb in of_kind(objs, "PodDisruptionBudget"):
        assert pdb["spec"].get("minAvailable", 0) >= 2, pdb["metadata"]["name"]


def test_pods_meet_the_restricted_pod_security_standard_namespace_label(objs: list[Obj]) -> None:
    (ns,) = of_kind(objs, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"} == {
        ns["metadata"]["name"]
    }


def test_vault_policies_are_least_privilege() -> None:
    assert vault_policy_problems(load_policies()) == []


def test_vault_roles_in_the_readme_match_the_service_accounts() -> None:
    readme = (DEPLOY / "vault" / "README.md").read_text()
    accounts = set(by_name(render("overlays/prod"), "ServiceAccount"))
    assert set(VAULT_CLIENTS) <= accounts
    assert "for svc in credentials auth workspaces; do" in readme
    assert 'bound_service_account_names="$svc"' in readme
    assert "audience=vault" in readme


# ----------------------------------------------------------------------------------------------
# The checks catch what they exist for (each mutation must produce a problem)


def _containers(objs: list[Obj], app: str = "keys") -> list[Obj]:
    dep = next(d for d in of_kind(objs, "Deployment") if app_of(d) == app)
    containers: list[Obj] = dep["spec"]["template"]["spec"]["containers"]
    return containers


def _pod(objs: list[Obj], app: str = "keys") -> Obj:
    dep = next(d for d in of_kind(objs, "Deployment") if app_of(d) == app)
    pod: Obj = dep["spec"]["template"]["spec"]
    return pod


MUTATIONS: dict[str, tuple[Callable[[list[Obj]], Any], Callable[[list[Obj]], list[str]]]] = {
    "root user": (
        lambda o: _containers(o)[0]["securityContext"].update(runAsUser=0),
        container_problems,
    ),
    "writable root fs": (
        lambda o: _containers(o)[0]["securityContext"].pop("readOnlyRootFilesystem"),
        container_problems,
    ),
    "keeps a capability": (
        lambda o: _containers(o)[0]["securityContext"]["capabilities"].update(add=["NET_RAW"]),
        container_problems,
    ),
    "no memory limit": (
        lambda o: _containers(o)[0]["resources"]["limits"].pop("memory"),
        container_problems,
    ),
    "tcp probe": (
        lambda o: _containers(o)[0].update(readinessProbe={"tcpSocket": {"port": 50051}}),
        container_problems,
    ),
    "short grace": (lambda o: _pod(o).update(terminationGracePeriodSeconds=5), container_problems),
    "shared account": (
        lambda o: _pod(o, "workspaces").update(serviceAccountName="keys"),
        service_account_problems,
    ),
    "token for edge": (
        lambda o: _pod(o, "edge").update(automountServiceAccountToken=True),
        token_problems,
    ),
    "literal secret": (
        lambda o: o.append(
            {"kind": "Secret", "metadata": {"name": "db"}, "stringData": {"url": "x"}}
        ),
        secret_problems,
    ),
    "no default deny": (
        lambda o: o.remove(by_name(o, "NetworkPolicy")["default-deny-all"]),
        default_deny_problems,
    ),
    "allow-all egress": (
        lambda o: o.append(
            {
                "kind": "NetworkPolicy",
                "metadata": {"name": "oops"},
                "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
            }
        ),
        lambda o: [str(f) for f in allowed_flows(o, ENDPOINTS) ^ expected_flows("dev")],
    ),
    "wrong identity": (
        lambda o: by_name(o, "Certificate")["keys"]["spec"].update(commonName="edge"),
        certificate_problems,
    ),
    "vault url on keys": (
        lambda o: _containers(o)[0]["env"].append(
            {"name": "RAILGUARD_KMS_URL", "value": "vault://x"}
        ),
        settings_problems,
    ),
    "latest image": (
        lambda o: _containers(o)[0].update(image="railguard:latest"),
        lambda o: image_problems(o, release=False),
    ),
    "unknown field": (
        lambda o: _containers(o)[0].update(runAsRoot=False),
        lambda o: schema_problems(o, load_validator()),
    ),
    "no pdb": (
        lambda o: o.remove(by_name(o, "PodDisruptionBudget")["keys"]),
        lambda o: availability_problems(o, min_replicas=1),
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_checks_catch_violations(mutation: str) -> None:
    mutate, check = MUTATIONS[mutation]
    objs = render("overlays/dev")
    assert check(objs) == [], "the check must pass on the real manifests first"
    mutate(objs)
    assert check(objs) != []


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        (
            "credentials",
            'path "transit/encrypt/credentials" { capabilities = ["create", "update"] }',
        ),
        ("credentials", 'path "transit/keys/credentials/rotate" { capabilities = ["update"] }'),
        ("rewrap", 'path "transit/decrypt/credentials" { capabilities = ["update"] }'),
        ("auth", 'path "transit/encrypt/credentials" { capabilities = ["update"] }'),
        ("key-admin", 'path "transit/keys/*" { capabilities = ["delete"] }'),
    ],
)
def test_vault_policy_check_catches_over_grants(policy: str, text: str) -> None:
    policies = load_policies()
    for path, caps in parse_policy(text).items():
        policies[policy].setdefault(path, set()).update(caps)
    assert vault_policy_problems(policies) != []


def test_missing_kubectl_fails_rather_than_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setitem(globals(), "KUBECTL_FALLBACK", Path("/nonexistent/kubectl"))
    with pytest.raises(pytest.fail.Exception, match="kubectl is required"):
        find_kubectl()


def test_missing_kubernetes_validate_fails_rather_than_skips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes_validate", None)
    with pytest.raises(pytest.fail.Exception, match="pip install kubernetes-validate"):
        load_validator()


def kms_urls(objs: Iterable[Obj]) -> dict[str, str]:
    """Every RAILGUARD_KMS_URL a container is given, by deployment name."""
    urls = {}
    for deployment in of_kind(objs, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if env["name"] == "RAILGUARD_KMS_URL":
                    urls[deployment["metadata"]["name"]] = env["value"]
    return urls


def test_kms_urls_are_understood_by_the_key_manager(objs: list[Obj]) -> None:
    from servicekit.kms import VaultTransit, key_manager_from_url

    urls = kms_urls(objs)
    assert {name.rsplit("-", 1)[-1] for name in urls} >= {"auth", "credentials"}
    for name, url in urls.items():
        manager = key_manager_from_url(url)  # parses and configures; opens no connection
        assert isinstance(manager, VaultTransit), name


def test_services_that_refuse_a_shared_database_without_peppers_get_them(objs: list[Obj]) -> None:
    """keys and credentials exit at start-up on PostgreSQL without these; the manifests must pass
    them, as files projected from a Secret."""
    required = {
        "keys": ("RAILGUARD_KEYS_PEPPERS_FILE", ("keys-peppers", "peppers")),
        "credentials": (
            "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER_FILE",
            ("credentials-webhook-pepper", "pepper"),
        ),
    }
    for deployment in of_kind(objs, "Deployment"):
        svc = app_of(deployment)
        if svc not in required:
            continue
        name, source = required[svc]
        pod = deployment["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
        assert env.get(name), f"{svc}: {name} is missing"
        assert _projected_secrets(pod).get(str(env[name])) == source, f"{svc}: {name} not projected"


# ----------------------------------------------------------------------------------------------
# Topology: balancing, schedules, migrations, telemetry


def headless_problems(objs: Iterable[Obj]) -> list[str]:
    """Each gRPC service's Service is headless and selects only serving pods."""
    problems = []
    services = by_name(objs, "Service")
    for svc in GRPC_SERVICES:
        spec = services.get(svc, {}).get("spec", {})
        if spec.get("clusterIP") != "None":
            problems.append(f"Service/{svc}: must be headless (clusterIP: None) for round_robin")
        if spec.get("selector", {}).get("app.kubernetes.io/component") != "server":
            problems.append(f"Service/{svc}: must select only the serving pods")
    return problems


def job_problems(objs: Iterable[Obj], *, migrate_jobs: bool) -> list[str]:
    """A CronJob per purge (and, in a migrations overlay, a Job per migrate), each hardened."""
    problems = []
    crons = {app_of_job(c): c for c in of_kind(objs, "CronJob")}
    jobs = {app_of_job(j): j for j in of_kind(objs, "Job")}
    if set(crons) != set(PURGED) and not migrate_jobs:
        problems.append(f"purge CronJobs must be exactly {sorted(PURGED)}, found {sorted(crons)}")
    if migrate_jobs and set(jobs) != set(GRPC_SERVICES):
        problems.append(f"migrate Jobs must be {sorted(GRPC_SERVICES)}, found {sorted(jobs)}")
    for verb, workloads in (("purge", crons), ("migrate", jobs)):
        for svc, w in workloads.items():
            ident = f"{w['kind']}/{w['metadata']['name']}"
            pod = _pod_spec(w)
            (c,) = pod["containers"]
            if c.get("command") != ["python", "-m", f"{svc}_service", verb]:
                problems.append(f"{ident}: command must be python -m {svc}_service {verb}")
            if pod.get("serviceAccountName") != svc or pod.get("automountServiceAccountToken"):
                problems.append(f"{ident}: must run as {svc} without a token")
            if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
                problems.append(f"{ident}: pod must run as non-root")
            sc = c.get("securityContext", {})
            if (
                sc.get("readOnlyRootFilesystem") is not True
                or sc.get("allowPrivilegeEscalation") is not False
                or sc.get("capabilities", {}).get("drop") != ["ALL"]
            ):
                problems.append(f"{ident}: container must be read-only, unprivileged, no caps")
            if not {"cpu", "memory"} <= c.get("resources", {}).get("limits", {}).keys():
                problems.append(f"{ident}: cpu and memory limits are required")
            if w["kind"] == "CronJob" and w["spec"].get("concurrencyPolicy") != "Forbid":
                problems.append(f"{ident}: purges must not overlap (concurrencyPolicy: Forbid)")
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            if verb == "purge" and env.get("RAILGUARD_MIGRATE_ON_START") != "0":
                problems.append(f"{ident}: a purge must not migrate")
            problems += secret_file_problems(w, env)
    return problems


def app_of_job(workload: Obj) -> str:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return str(spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"])


def metrics_problems(objs: Iterable[Obj]) -> list[str]:
    """Every serving pod exposes `metrics` (9090) and the PodMonitor selects it."""
    problems = []
    monitors = of_kind(objs, "PodMonitor")
    for dep in of_kind(objs, "Deployment"):
        name, template = dep["metadata"]["name"], dep["spec"]["template"]
        ports = {
            p.get("name"): p["containerPort"] for p in template["spec"]["containers"][0]["ports"]
        }
        if ports.get("metrics") != METRICS_PORT:
            problems.append(f"{name}: needs a container port named metrics on {METRICS_PORT}")
        scraped = any(
            _selects(m["spec"]["selector"], template["metadata"]["labels"])
            and any(e.get("port") == "metrics" for e in m["spec"]["podMetricsEndpoints"])
            for m in monitors
        )
        if not scraped:
            problems.append(f"{name}: no PodMonitor scrapes its metrics port")
        notes = template["metadata"].get("annotations", {})
        if notes.get("prometheus.io/port") != str(METRICS_PORT):
            problems.append(f"{name}: prometheus.io/port annotation must be {METRICS_PORT}")
    return problems


def test_grpc_services_are_headless_for_client_side_balancing(objs: list[Obj]) -> None:
    assert headless_problems(objs) == []


def test_every_purge_is_scheduled_and_hardened(objs: list[Obj]) -> None:
    assert job_problems(objs, migrate_jobs=False) == []


def test_the_prod_migrations_run_as_hardened_jobs_with_the_release_image() -> None:
    jobs = render("overlays/prod/migrations")
    assert {o["kind"] for o in jobs} == {"Job"}
    assert job_problems(jobs, migrate_jobs=True) == []
    assert schema_problems(jobs, load_validator()) == []
    release = {c["image"] for d in of_kind(render("overlays/prod"), "Deployment")
               for c in d["spec"]["template"]["spec"]["containers"]}  # fmt: skip
    assert {
        c["image"] for j in jobs for c in j["spec"]["template"]["spec"]["containers"]
    } == release
    assert image_problems(jobs, release=True) == []


def test_prod_services_do_not_migrate_on_start_dev_ones_do() -> None:
    for overlay, expected in (("prod", "0"), ("dev", None)):
        (config,) = of_kind(render(f"overlays/{overlay}"), "ConfigMap")
        assert config["data"].get("RAILGUARD_MIGRATE_ON_START") == expected, overlay


def test_every_serving_pod_is_scraped(objs: list[Obj]) -> None:
    assert metrics_problems(objs) == []


def test_the_prod_image_is_pinned_by_digest() -> None:
    images = {c["image"] for d in of_kind(render("overlays/prod"), "Deployment")
              for c in d["spec"]["template"]["spec"]["containers"]}  # fmt: skip
    assert all(re.fullmatch(r"[^@]+@sha256:[0-9a-f]{64}", i) for i in images), images


def test_no_environment_variable_comes_from_a_secret(objs: list[Obj]) -> None:
    """CKV_K8S_35: secrets are projected files, never environment variables."""
    refs = [
        e["name"]
        for o in objs
        if o["kind"] in {"Deployment", "CronJob", "Job"}
        for c in _pod_spec(o)["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    refs += [
        str(src)
        for o in objs
        if o["kind"] in {"Deployment", "CronJob", "Job"}
        for c in _pod_spec(o)["containers"]
        for src in c.get("envFrom", [])
        if "secretRef" in src
    ]
    assert refs == []


def _drop_flow(objs: list[Obj]) -> None:
    """Remove keys → workspaces (ResolveAccess) from the egress policy."""
    policy = by_name(objs, "NetworkPolicy")["grpc-egress-to-workspaces"]
    policy["spec"]["podSelector"]["matchExpressions"][0]["values"].remove("keys")


def _extra_flow(objs: list[Obj]) -> None:
    """Let keys dial auth, which no composition root does."""
    policy = by_name(objs, "NetworkPolicy")["grpc-ingress-auth-keys-credentials"]
    policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"].append(
        "keys"
    )
    by_name(objs, "NetworkPolicy")["grpc-egress-to-workspaces"]["spec"]["egress"][0]["to"][0][
        "podSelector"
    ] = {"matchLabels": {"app.kubernetes.io/component": "server"}}


TOPOLOGY_MUTATIONS: dict[
    str, tuple[Callable[[list[Obj]], Any], Callable[[list[Obj]], list[str]]]
] = {
    "a declared flow blocked": (
        _drop_flow,
        lambda o: [str(f) for f in allowed_flows(o, ENDPOINTS) ^ expected_flows("dev")],
    ),
    "an undeclared flow allowed": (
        _extra_flow,
        lambda o: [str(f) for f in allowed_flows(o, ENDPOINTS) ^ expected_flows("dev")],
    ),
    "scraper shut out": (
        lambda o: o.remove(by_name(o, "NetworkPolicy")["metrics-scrape"]),
        lambda o: [str(f) for f in allowed_flows(o, ENDPOINTS) ^ expected_flows("dev")],
    ),
    "ClusterIP service": (
        lambda o: by_name(o, "Service")["keys"]["spec"].pop("clusterIP"),
        headless_problems,
    ),
    "missing purge schedule": (
        lambda o: o.remove(by_name(o, "CronJob")["keys-purge"]),
        lambda o: job_problems(o, migrate_jobs=False),
    ),
    "secret as env var": (
        lambda o: _containers(o)[0]["env"].append(
            {
                "name": "RAILGUARD_KEYS_PEPPERS",
                "valueFrom": {"secretKeyRef": {"name": "p", "key": "k"}},
            }
        ),
        settings_problems,
    ),
    "no SPIFFE ID": (
        lambda o: by_name(o, "Certificate")["keys"]["spec"].pop("uris"),
        certificate_problems,
    ),
    "SPIFFE ID of another service": (
        lambda o: by_name(o, "Certificate")["keys"]["spec"].update(
            uris=["spiffe://railguard.local/ns/railguard/sa/edge"]
        ),
        certificate_problems,
    ),
    "no metrics port": (
        lambda o: _containers(o)[0]["ports"].pop(),
        metrics_problems,
    ),
    "pinned peer address": (
        lambda o: by_name(o, "ConfigMap")[next(iter(by_name(o, "ConfigMap")))]["data"].update(
            RAILGUARD_KEYS_ADDR="keys:50051"
        ),
        settings_problems,
    ),
}


@pytest.mark.parametrize("mutation", sorted(TOPOLOGY_MUTATIONS))
def test_topology_checks_catch_violations(mutation: str) -> None:
    mutate, check = TOPOLOGY_MUTATIONS[mutation]
    objs = render("overlays/dev")
    assert check(objs) == [], "the check must pass on the real manifests first"
    mutate(objs)
    assert check(objs) != []
