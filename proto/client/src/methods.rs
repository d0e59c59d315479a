//! The typed methods (get, set, ... batch), written once for every kind of
//! client: each type that expands [`typed_methods!`] provides
//! `exec(&self, Request) -> Result<Outcome>` and
//! `stream(&self, &Command) -> Result<$stream>` (both `async` for the
//! async client, which passes `async; .await`).

macro_rules! typed_methods {
    ($stream:ty; $($async:ident)?; $($await:tt)*) => {
        /// GET: the value of `key`, if it exists.
        pub $($async)? fn get(&self, key: impl AsRef<[u8]>) -> $crate::Result<Option<Vec<u8>>> {
            let cmd = $crate::Command::get(key.as_ref());
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_value()
        }

        /// SET without a TTL or condition; true (it is always applied).
        pub $($async)? fn set(
            &self,
            key: impl AsRef<[u8]>,
            value: impl AsRef<[u8]>,
        ) -> $crate::Result<bool> {
            self.set_with(key, value, $crate::SetOptions::new())$($await)*
        }

        /// SET with a TTL and/or a condition: false when NX / XX did not
        /// hold (nothing was written).
        pub $($async)? fn set_with(
            &self,
            key: impl AsRef<[u8]>,
            value: impl AsRef<[u8]>,
            options: $crate::SetOptions,
        ) -> $crate::Result<bool> {
            let cmd = $crate::Command::set(key.as_ref(), value.as_ref(), options);
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_done()
        }

        /// DELETE: how many of `keys` existed (and are now gone).
        pub $($async)? fn delete<K: AsRef<[u8]>>(
            &self,
            keys: impl IntoIterator<Item = K>,
        ) -> $crate::Result<u64> {
            let keys: Vec<K> = keys.into_iter().collect();
            let cmd = $crate::Command::Delete(keys.iter().map(AsRef::as_ref).collect());
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_count()
        }

        /// EXISTS: how many of `keys` exist (a key named twice counts twice).
        pub $($async)? fn exists<K: AsRef<[u8]>>(
            &self,
            keys: impl IntoIterator<Item = K>,
        ) -> $crate::Result<u64> {
            let keys: Vec<K> = keys.into_iter().collect();
            let cmd = $crate::Command::Exists(keys.iter().map(AsRef::as_ref).collect());
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_count()
        }

        /// EXPIRE: sets the TTL of `key` (zero removes it); false if no such key.
        pub $($async)? fn expire(
            &self,
            key: impl AsRef<[u8]>,
            ttl: std::time::Duration,
        ) -> $crate::Result<bool> {
            let cmd = $crate::Command::Expire { key: key.as_ref(), ttl };
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_done()
        }

        /// TTL: the time `key` has left.
        pub $($async)? fn ttl(&self, key: impl AsRef<[u8]>) -> $crate::Result<$crate::Ttl> {
            let cmd = $crate::Command::Ttl { key: key.as_ref() };
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_ttl()
        }

        /// INCR by `by`: the new value (`NotInteger` if the value is not one).
        pub $($async)? fn incr(&self, key: impl AsRef<[u8]>, by: i64) -> $crate::Result<i64> {
            let cmd = $crate::Command::incr(key.as_ref(), by);
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_int()
        }

        /// MGET: one slot per key, in order.
        pub $($async)? fn mget<K: AsRef<[u8]>>(
            &self,
            keys: impl IntoIterator<Item = K>,
        ) -> $crate::Result<Vec<Option<Vec<u8>>>> {
            let keys: Vec<K> = keys.into_iter().collect();
            let cmd = $crate::Command::MGet(keys.iter().map(AsRef::as_ref).collect());
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_values()
        }

        /// MSET: writes every pair.
        pub $($async)? fn mset<K: AsRef<[u8]>, V: AsRef<[u8]>>(
            &self,
            pairs: impl IntoIterator<Item = (K, V)>,
        ) -> $crate::Result<()> {
            let pairs: Vec<(K, V)> = pairs.into_iter().collect();
            let refs = pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
            let cmd = $crate::Command::MSet(refs);
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_done().map(drop)
        }

        /// SCAN from `cursor` (0 to start): keys matching the glob
        /// `pattern`, about `count` per page (0: the server's default).
        pub $($async)? fn scan(
            &self,
            cursor: u64,
            pattern: Option<&str>,
            count: u32,
        ) -> $crate::Result<$crate::ScanPage> {
            let cmd = $crate::Command::Scan { cursor, pattern, count };
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_scan_page()
        }

        /// CALL a plugin: its reply.
        pub $($async)? fn call(
            &self,
            name: &str,
            payload: impl AsRef<[u8]>,
        ) -> $crate::Result<Vec<u8>> {
            let cmd = $crate::Command::Call { name, payload: payload.as_ref(), options: "" };
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_call_reply()
        }

        /// CALL a pipeline with its options text (e.g. `"fps=1
        /// max_frames=3"`): a stream of per-frame results, then the final
        /// one. Never retried (a pipeline call is not idempotent).
        pub $($async)? fn call_stream(
            &self,
            name: &str,
            payload: impl AsRef<[u8]>,
            options: &str,
        ) -> $crate::Result<$stream> {
            let cmd = $crate::Command::Call { name, payload: payload.as_ref(), options };
            self.stream(&cmd)$($await)*
        }

        /// STATS of `section` (`None`: all) as name/value pairs.
        pub $($async)? fn stats(
            &self,
            section: Option<&str>,
        ) -> $crate::Result<Vec<(String, $crate::StatValue)>> {
            let cmd = $crate::Command::Stats { section };
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_stats()
        }

        /// HELLO: negotiates the version and features, authenticates.
        pub $($async)? fn hello(&self, hello: &$crate::Hello) -> $crate::Result<$crate::Welcome> {
            let cmd = $crate::Command::Hello(hello);
            self.exec($crate::command::Request::One(&cmd))$($await)*?.into_welcome()
        }

        /// Runs `commands` as one Batch frame: one result per command, in
        /// order (an operation's error is its own `Err`). Calls and Hellos
        /// cannot be batched.
        pub $($async)? fn batch(
            &self,
            commands: &[$crate::Command<'_>],
        ) -> $crate::Result<Vec<$crate::Result<$crate::Outcome>>> {
            let outcomes = self
                .exec($crate::command::Request::Batch(commands))$($await)*?
                .into_batch()?;
            if outcomes.len() != commands.len() {
                return Err($crate::ProtocolError::BatchLength {
                    sent: commands.len(),
                    got: outcomes.len(),
                }
                .into());
            }
            Ok(outcomes)
        }
    };
}

pub(crate) use typed_methods;

/// A client with per-call options other than its defaults, from
/// `with_options` (every kind of client has it).
///
/// ```no_run
/// use std::time::Duration;
/// use citadel_client::{CallOptions, Client};
///
/// let client = Client::connect("127.0.0.1:7379")?;
/// let quick = CallOptions::new().deadline(Duration::from_millis(20)).priority(10);
/// let value = client.with_options(quick).get("session:42")?;
/// # let _ = value;
/// # Ok::<(), citadel_client::Error>(())
/// ```
pub struct WithOptions<'c, C> {
    pub(crate) client: &'c C,
    pub(crate) options: crate::CallOptions,
}

/// Expands the typed methods for `WithOptions<'_, $client>`, over the
/// client's `exec_with` and `stream_with`.
macro_rules! with_options_methods {
    ($client:ty, $stream:ty; $($async:ident)?; $($await:tt)*) => {
        impl $crate::methods::WithOptions<'_, $client> {
            $($async)? fn exec(
                &self,
                req: $crate::command::Request<'_, '_>,
            ) -> $crate::Result<$crate::Outcome> {
                self.client.exec_with(req, &self.options)$($await)*
            }

            $($async)? fn stream(&self, cmd: &$crate::Command<'_>) -> $crate::Result<$stream> {
                self.client.stream_with(cmd, &self.options)$($await)*
            }

            $crate::methods::typed_methods!($stream; $($async)?; $($await)*);
        }
    };
}

pub(crate) use with_options_methods;
