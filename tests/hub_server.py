"""A Hugging Face Hub on 127.0.0.1 for tests: real HTTP, real client.

It speaks the endpoints `huggingface_hub` uses to create a repository,
commit files (preupload, then an NDJSON commit with base64 contents: every
file is declared "regular", so no LFS or Xet storage is involved), resolve
a revision and list its files (`snapshot_download`), and download them
(`HEAD`/`GET .../resolve/<revision>/<path>`). Repositories
live in memory as a list of commits; `fail_after_bytes` cuts a download
short to simulate an interrupted transfer.
"""

import base64
import hashlib
import http.server
import json
import re
import threading
import urllib.parse

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<path>.+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<revision>[^/]+)$")
_API = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<action>preupload|commit|revision)/(?P<revision>.+)$"
)


CARD_KEYS = {
    "library_name",
    "license",
    "tags",
    "datasets",
    "metrics",
    "pipeline_tag",
    "model-index",
}


def validate_card(content):
    """The Hub's model-card check, for the subset of YAML a card uses."""
    lines = content.split("\n")
    if not lines or lines[0] != "---" or "---" not in lines[1:]:
        return [{"message": "README.md has no YAML front matter"}]
    errors = []
    for line in lines[1 : lines.index("---", 1)]:
        if line.startswith(("- ", " ")):  # list items and nested mappings
            continue
        key, sep, _ = line.partition(":")
        if not sep or key not in CARD_KEYS:
            errors.append({"message": f"unexpected metadata line {line!r}"})
    return errors


class Repository:
    def __init__(self):
        self.commits = []  # (sha, {path: bytes})
        self.branches = {}

    def files(self, revision):
        sha = self.branches.get(revision, revision)
        for commit_sha, files in self.commits:
            if commit_sha == sha:
                return commit_sha, files
        return None, None

    def commit(self, branch, new_files, summary):
        _, files = self.files(branch)
        files = dict(files or {})
        files.update(new_files)
        sha = hashlib.sha1(f"{len(self.commits)}{summary}{sorted(files)}".encode()).hexdigest()
        self.commits.append((sha, files))
        self.branches[branch] = sha
        return sha


class FakeHub:
    """Start with `with FakeHub() as hub:`; point `HF_ENDPOINT` at `hub.url`."""

    def __init__(self):
        self.repos = {}
        self.requests = []
        self.fail_after_bytes = None
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._serve_file(self, send_body=False)

            def do_GET(self):
                path = urllib.parse.urlparse(self.path).path
                if _TREE.match(path):
                    hub._tree(self, _TREE.match(path))
                elif _API.match(path):
                    hub._revision_info(self, _API.match(path))
                else:
                    hub._serve_file(self, send_body=True)

            def do_POST(self):
                hub._post(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # --- responses ---

    @staticmethod
    def _reply(handler, status, body=b"", headers=None, send_body=True):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if send_body:
            handler.wfile.write(body)

    def _error(self, handler, status, code, message, send_body=True):
        self._reply(
            handler,
            status,
            {"error": message},
            {"X-Error-Code": code, "X-Error-Message": message},
            send_body,
        )

    def _serve_file(self, handler, send_body):
        path = urllib.parse.urlparse(handler.path).path
        self.requests.append((handler.command, path))
        match = _RESOLVE.match(path)
        if not match:
            return self._error(handler, 404, "EntryNotFound", "not found", send_body)
        repo = self.repos.get(match["repo"])
        if repo is None:
            return self._error(handler, 404, "RepoNotFound", "Repository not found", send_body)
        revision = urllib.parse.unquote(match["revision"])
        sha, files = repo.files(revision)
        if files is None:
            return self._error(handler, 404, "RevisionNotFound", "Invalid rev id", send_body)
        name = urllib.parse.unquote(match["path"])
        if name not in files:
            return self._error(handler, 404, "EntryNotFound", f"{name} does not exist", send_body)
        content = files[name]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{hashlib.sha1(content).hexdigest()}"',
            "Content-Type": "application/octet-stream",
        }
        if send_body and self.fail_after_bytes is not None:
            # Promise the whole file, send part of it, and hang up.
            handler.send_response(200)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content[: self.fail_after_bytes])
            handler.wfile.flush()
            handler.close_connection = True
            return None
        return self._reply(handler, 200, content, headers, send_body)

    def _revision_info(self, handler, match):
        repo = self.repos.get(match["repo"])
        if repo is None:
            return self._error(handler, 404, "RepoNotFound", "Repository not found")
        sha, files = repo.files(urllib.parse.unquote(match["revision"]))
        if files is None:
            return self._error(handler, 404, "RevisionNotFound", "Invalid rev id")
        return self._reply(
            handler,
            200,
            {"id": match["repo"], "sha": sha, "siblings": [{"rfilename": f} for f in files]},
        )

    def _tree(self, handler, match):
        """The file listing `snapshot_download` reads (`list_repo_tree`)."""
        self.requests.append(("GET", urllib.parse.urlparse(handler.path).path))
        repo = self.repos.get(match["repo"])
        sha, files = repo.files(urllib.parse.unquote(match["revision"])) if repo else (None, None)
        if files is None:
            return self._error(handler, 404, "RevisionNotFound", "Invalid rev id")
        entries = [
            {
                "type": "file",
                "path": name,
                "size": len(content),
                "oid": hashlib.sha1(content).hexdigest(),
            }
            for name, content in sorted(files.items())
        ]
        return self._reply(handler, 200, entries)

    def _post(self, handler):
        path = urllib.parse.urlparse(handler.path).path
        self.requests.append(("POST", path))
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        if path == "/api/validate-yaml":
            errors = validate_card(json.loads(body)["content"])
            return self._reply(handler, 400 if errors else 200, {"errors": errors, "warnings": []})
        if path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
            existed = repo_id in self.repos
            self.repos.setdefault(repo_id, Repository())
            if existed and not payload.get("exist_ok", True):
                return self._error(
                    handler, 409, "RepoExists", "You already created this model repo"
                )
            return self._reply(handler, 200, {"url": f"{self.url}/{repo_id}", "name": repo_id})
        match = _API.match(path)
        if not match or match["repo"] not in self.repos:
            return self._error(handler, 404, "RepoNotFound", "Repository not found")
        if match["action"] == "preupload":
            files = json.loads(body)["files"]
            return self._reply(
                handler,
                200,
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files
                    ]
                },
            )
        return self._commit(handler, match, body)

    def _commit(self, handler, match, body):
        new_files, summary = {}, ""
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry["key"] == "header":
                summary = entry["value"].get("summary", "")
            elif entry["key"] == "file":
                value = entry["value"]
                new_files[value["path"]] = base64.b64decode(value["content"])
        branch = urllib.parse.unquote(match["revision"])
        sha = self.repos[match["repo"]].commit(branch, new_files, summary)
        return self._reply(
            handler,
            200,
            {
                "commitUrl": f"{self.url}/{match['repo']}/commit/{sha}",
                "commitOid": sha,
                "success": True,
            },
        )
