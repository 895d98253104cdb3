//! Talking to the local node's HTTP API. The node writes its API address into the data
//! directory, so several nodes on one machine are told apart by `--data-dir`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::error::CliError;

/// The local node's API.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

fn not_running(dir: &Path) -> CliError {
    CliError::NotRunning {
        dir: dir.to_path_buf(),
    }
}

impl Client {
    /// Finds the node running on `dir`.
    pub fn for_dir(dir: &Path) -> Result<Client, CliError> {
        let file = dir.join(aidmesh_node::node::API_FILE);
        let addr = std::fs::read_to_string(&file).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                // The Debian package's hub (/var/lib/aidmesh) is readable by its group.
                CliError::NotPermitted { file: file.clone() }
            } else {
                not_running(dir)
            }
        })?;
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build();
        Ok(Client {
            base: format!("http://{}", addr.trim()),
            agent: config.into(),
        })
        .and_then(|c| {
            // A stale file from a node killed with -9: check someone answers.
            c.agent
                .get(format!("{}/api/v1/status", c.base))
                .call()
                .map_err(|_| not_running(dir))?;
            Ok(c)
        })
    }

    fn answer(
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, CliError> {
        let mut resp = resp.map_err(CliError::Unreachable)?;
        let code = resp.status();
        let body: Value = resp
            .body_mut()
            .read_json()
            .map_err(|source| CliError::Unreadable {
                status: code,
                source,
            })?;
        if code.is_success() {
            Ok(body)
        } else {
            Err(CliError::Refused {
                status: code,
                detail: body
                    .get("detail")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        }
    }

    /// GET a path under the API.
    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        Self::answer(self.agent.get(format!("{}{path}", self.base)).call())
    }

    /// GET a path under the API with query parameters (encoded properly).
    pub fn get_query(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        Self::answer(req.call())
    }

    /// GET a path whose answer is a file (an export): its bytes, or the node's error.
    pub fn get_bytes(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, CliError> {
        self.get_file(path, query).map(|(bytes, _)| bytes)
    }

    /// GET a file under the API: its bytes and the file name the node suggests
    /// (`Content-Disposition`), if any.
    pub fn get_file(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Vec<u8>, Option<String>), CliError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        let mut resp = req.call().map_err(CliError::Unreachable)?;
        if !resp.status().is_success() {
            return Self::answer(Ok(resp)).map(|_| (Vec::new(), None));
        }
        let name = resp
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("filename=\"").nth(1))
            .and_then(|f| f.strip_suffix('"'))
            // Only a plain name: never a path the node could steer elsewhere.
            .filter(|f| !f.is_empty() && !f.contains(['/', '\\']) && !f.starts_with('.'))
            .map(str::to_string);
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(CliError::AnswerCut)?;
        Ok((bytes, name))
    }

    /// POST JSON to a path under the API.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        Self::answer(
            self.agent
                .post(format!("{}{path}", self.base))
                .send_json(body),
        )
    }

    /// An agent for whole files (bundles): they may take minutes, not 30 s.
    fn file_agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30 * 60)))
            .http_status_as_error(false)
            .build()
            .into()
    }

    /// GETs a file (query encoded) into `out`; returns the response headers.
    pub fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
        out: &mut dyn std::io::Write,
    ) -> Result<ureq::http::HeaderMap, CliError> {
        let mut req = Self::file_agent().get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        let resp = req.call();
        let ok = resp.as_ref().is_ok_and(|r| r.status().is_success());
        if !ok {
            return Self::answer(resp).map(|_| ureq::http::HeaderMap::new());
        }
        let resp = resp.map_err(CliError::Unreachable)?;
        let headers = resp.headers().clone();
        let mut body = resp.into_body();
        std::io::copy(&mut body.as_reader(), out).map_err(CliError::DownloadCut)?;
        Ok(headers)
    }

    /// POSTs the bytes of `file` with `content_type` to a path under the API.
    pub fn post_file(
        &self,
        path: &str,
        content_type: &str,
        file: &mut dyn std::io::Read,
    ) -> Result<Value, CliError> {
        Self::answer(
            Self::file_agent()
                .post(format!("{}{path}", self.base))
                .content_type(content_type)
                .send(ureq::SendBody::from_reader(file)),
        )
    }
}
