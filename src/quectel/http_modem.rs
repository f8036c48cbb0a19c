//! The update flow's [`HttpModem`] for Quectel modules: `AT+QHTTP*` requests and reads,
//! `AT+QSSLCFG` for HTTPS, `AT+QHTTPGETEX` or a `Range:` header for ranges, `AT+QHTTPREADFILE`
//! and `AT+QF*` for the module's file system.

use core::time::Duration;

use embedded_io_async::{BufRead, Read, Write};

use crate::at::AsyncClock;
#[cfg(feature = "ranged")]
use crate::at::AtCommand;
#[cfg(any(feature = "ranged", feature = "modem-file"))]
use crate::client::TimeoutExt;
use crate::client::asynch::{Client, DataReader};
use crate::client::{Error as ClientError, UrcHandler};
#[cfg(feature = "modem-file")]
use crate::client::{ModemCode, Rejection};
use crate::quectel::error::HttpError;
#[cfg(feature = "modem-file")]
use crate::quectel::file::FileHandle;
use crate::quectel::http::{HttpConfig, HttpGet, HttpRead, HttpStop, SetHttpUrl};
use crate::quectel::urc::{DownloadUrc, HttpStatus};
#[cfg(feature = "ranged")]
use crate::update::Method;
use crate::update::{HttpBody, HttpModem, ModemFailure, UpdateConfig};

/// Deadline for the clean-up commands run on every exit.
#[cfg(any(feature = "ranged", feature = "modem-file"))]
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

type Res<T, E> = Result<T, ModemFailure<E>>;

/// A Quectel module's HTTP(S) client as the update flow's [`HttpModem`], over the crate's
/// async client (the blocking client's [`as_async`](crate::client::blocking::Client::as_async)
/// gives one). [`update`](crate::update::update) builds one for you.
pub struct QuectelHttp<'c, 'b, T, C, H> {
    client: &'c mut Client<'b, T, C, H>,
    /// `AT+QHTTPGET` response time (s).
    response_time: u16,
    /// `AT+QHTTPREAD` wait time (s).
    read_wait: u16,
    /// Request-header mode is on (ranges by `Range:` header); [`close`](HttpModem::close)
    /// switches it off.
    #[cfg(feature = "ranged")]
    header_mode: bool,
    /// A module file this update opened.
    #[cfg(feature = "modem-file")]
    file: Option<FileHandle>,
}

impl<T, C, H> core::fmt::Debug for QuectelHttp<'_, '_, T, C, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QuectelHttp")
            .field("response_time", &self.response_time)
            .field("read_wait", &self.read_wait)
            .finish_non_exhaustive()
    }
}

impl<'c, 'b, T, C, H> QuectelHttp<'c, 'b, T, C, H> {
    /// The update flow's view of `client`, with the default response and read wait times
    /// until [`HttpModem::open`] takes them from the configuration.
    pub fn new(client: &'c mut Client<'b, T, C, H>) -> Self {
        QuectelHttp {
            client,
            response_time: 60,
            read_wait: 60,
            #[cfg(feature = "ranged")]
            header_mode: false,
            #[cfg(feature = "modem-file")]
            file: None,
        }
    }
}

/// `AT+QHTTPGETEX=?`: answers `OK` only where the module has the ranged GET.
#[cfg(feature = "ranged")]
struct GetexProbe;

#[cfg(feature = "ranged")]
impl AtCommand for GetexProbe {
    type Response<'a> = ();
    fn encode(&self, enc: &mut crate::at::Encoder<'_>) -> Result<(), crate::at::EncodeError> {
        enc.raw(b"AT+QHTTPGETEX=?")
    }
    fn response_lines(&self) -> crate::at::ResponseLines {
        crate::at::ResponseLines::Prefixed(b"+QHTTPGETEX:")
    }
    fn parse<'a>(&self, _lines: crate::at::Lines<'a>) -> Result<(), crate::at::ParseError> {
        Ok(())
    }
}

/// Room for one request-header block (`GET <path> HTTP/1.1`, `Host:`, `Range:`).
#[cfg(feature = "ranged")]
const HEADER_BUF: usize = 512;

/// Slowest transfer rate assumed when waiting for `+QHTTPREADFILE:` (bytes per second).
#[cfg(feature = "modem-file")]
const MIN_FILE_RATE: u32 = 4096;
/// File error "file already opened" (quectel-at.md §5, file error codes).
#[cfg(feature = "modem-file")]
const FILE_ALREADY_OPEN: u16 = 426;

impl<'b, T, C, H> HttpModem for QuectelHttp<'_, 'b, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    type Error = T::Error;
    type Body<'a>
        = QuectelBody<'a, 'b, T, C, H>
    where
        Self: 'a;

    async fn open(&mut self, cfg: &UpdateConfig<'_>) -> Res<(), T::Error> {
        self.response_time = cfg.response_time;
        self.read_wait = cfg.read_wait;
        // A session left over from before (a reset MCU) would refuse new requests: end it.
        // "No session" is an error answer too, so the result is ignored.
        let _ = self.client.send(&HttpStop).await;
        for c in [
            HttpConfig::ContextId(cfg.context_id),
            HttpConfig::ResponseHeader(false),
            HttpConfig::RequestHeader(false),
        ] {
            self.client.send(&c).await?;
        }
        // Without the `https` feature an https:// URL was refused by the configuration check.
        #[cfg(feature = "https")]
        if crate::update::is_https(cfg.url) || cfg.manifest_url.is_some_and(crate::update::is_https)
        {
            tls_setup(self.client, cfg).await?;
        }
        Ok(())
    }

    async fn get(&mut self, url: &str) -> Res<Duration, T::Error> {
        self.client.send(&SetHttpUrl::new(url)).await?;
        let get = HttpGet {
            response_time: self.response_time,
        };
        self.client.send(&get).await?;
        Ok(get.result_deadline())
    }

    async fn response(&mut self, within: Duration) -> Res<HttpStatus, T::Error> {
        self.client
            .wait_for(within, |line| match DownloadUrc::parse(line) {
                Some(DownloadUrc::HttpGet(r)) => Some(r.result.map_err(ModemFailure::Http)),
                Some(DownloadUrc::Ready) => Some(Err(ModemFailure::ModemRebooted)),
                Some(DownloadUrc::PdpDeactivated) => Some(Err(ModemFailure::LinkLost)),
                _ => None,
            })
            .await?
    }

    async fn body(&mut self, len: Option<u32>) -> Res<Self::Body<'_>, T::Error> {
        let read = match len {
            Some(n) => HttpRead::exact(n),
            None => HttpRead::until_trailer(),
        }
        .with_wait_time(self.read_wait);
        let reader = self.client.read_data(&read).await?;
        Ok(QuectelBody {
            reader,
            read,
            tail: [0; TAIL],
            tail_len: 0,
        })
    }

    #[cfg_attr(
        not(any(feature = "ranged", feature = "modem-file")),
        allow(unused_variables)
    )]
    async fn close(&mut self, failed: bool) {
        if failed {
            // A failed transfer may have left a payload half-read: start from clean framing.
            self.client.reset();
        }
        #[cfg(feature = "modem-file")]
        if let Some(handle) = self.file.take() {
            let _ = self
                .client
                .send(&crate::quectel::file::CloseFile { handle }.with_timeout(CLEANUP_TIMEOUT))
                .await;
        }
        #[cfg(feature = "ranged")]
        if self.header_mode {
            self.header_mode = false;
            let _ = self
                .client
                .send(&HttpConfig::RequestHeader(false).with_timeout(CLEANUP_TIMEOUT))
                .await;
        }
        let _ = self.client.send(&HttpStop).await;
    }

    /// GETEX if `AT+QHTTPGETEX=?` answers `OK`, else a `Range:` header in request-header
    /// mode.
    #[cfg(feature = "ranged")]
    async fn ranged_method(&mut self) -> Res<Option<Method>, T::Error> {
        match self.client.send(&GetexProbe).await {
            Ok(()) => Ok(Some(Method::RangedGetex)),
            Err(ClientError::Rejected(_)) => Ok(Some(Method::RangedHeader)),
            Err(e) => Err(e.into()),
        }
    }

    #[cfg(feature = "ranged")]
    fn range_scratch(&self, method: Method) -> usize {
        if method == Method::RangedHeader {
            HEADER_BUF
        } else {
            0
        }
    }

    /// Sets the URL and, for `Range:` headers, switches request-header mode on.
    #[cfg(feature = "ranged")]
    async fn start_ranges(&mut self, url: &str, method: Method) -> Res<(), T::Error> {
        self.client.send(&SetHttpUrl::new(url)).await?;
        if method == Method::RangedHeader {
            self.client.send(&HttpConfig::RequestHeader(true)).await?;
            self.header_mode = true;
        }
        Ok(())
    }

    #[cfg(feature = "ranged")]
    async fn get_range(
        &mut self,
        url: &str,
        method: Method,
        start: u32,
        len: u32,
        scratch: &mut [u8],
    ) -> Res<Duration, T::Error> {
        use crate::quectel::http::{HttpGetRange, HttpGetWithHeader, write_get_request};
        if method == Method::RangedGetex {
            let get = HttpGetRange {
                response_time: self.response_time,
                start,
                len,
            };
            self.client.send(&get).await?;
            Ok(get.result_deadline())
        } else {
            let end = u64::from(start) + u64::from(len) - 1;
            let n = write_get_request(scratch, url, Some((u64::from(start), Some(end))), &[])
                .map_err(|e| ModemFailure::Modem(ClientError::Encode(e)))?;
            let get = HttpGetWithHeader {
                response_time: self.response_time,
                header: &scratch[..n],
                input_time: None,
            };
            self.client.send(&get).await?;
            Ok(get.result_deadline())
        }
    }

    #[cfg(feature = "modem-file")]
    async fn stored_size(&mut self, name: &str) -> Res<Option<u32>, T::Error> {
        use crate::quectel::file::ListFiles;
        match self.client.send(&ListFiles::name(name)).await {
            Ok(list) => Ok(list.find(name).map(|e| e.size)),
            // No such file.
            Err(ClientError::Rejected(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    #[cfg(feature = "modem-file")]
    async fn delete_stored(&mut self, name: &str) -> Res<(), T::Error> {
        let del = crate::quectel::file::DeleteFile::new(name);
        self.client.send(&del.with_timeout(CLEANUP_TIMEOUT)).await?;
        Ok(())
    }

    #[cfg(feature = "modem-file")]
    async fn free_space(&mut self) -> Res<u64, T::Error> {
        use crate::quectel::file::{Drive, FreeSpace};
        Ok(self
            .client
            .send(&FreeSpace { drive: Drive::Ufs })
            .await?
            .free)
    }

    #[cfg(feature = "modem-file")]
    async fn fetch_to_storage(&mut self, name: &str, size: u32) -> Res<(), T::Error> {
        use crate::quectel::http::HttpReadFile;
        self.client
            .send(&HttpReadFile {
                file: name,
                wait_time: self.read_wait,
            })
            .await?;
        let wait =
            Duration::from_secs(u64::from(self.read_wait) + u64::from(size / MIN_FILE_RATE) + 1);
        self.client
            .wait_for(wait, |line| match DownloadUrc::parse(line) {
                Some(DownloadUrc::HttpReadFile(r)) => Some(r.map_err(ModemFailure::Http)),
                Some(DownloadUrc::Ready) => Some(Err(ModemFailure::ModemRebooted)),
                Some(DownloadUrc::PdpDeactivated) => Some(Err(ModemFailure::LinkLost)),
                _ => None,
            })
            .await?
    }

    #[cfg(feature = "modem-file")]
    async fn open_stored(&mut self, name: &str, offset: u32) -> Res<bool, T::Error> {
        use crate::quectel::file::{OpenFile, OpenMode, SeekFile, SeekOrigin};
        let open = OpenFile {
            name,
            mode: OpenMode::ReadOnly,
        };
        let handle = match self.client.send(&open).await {
            Ok(h) => h,
            // Still open from before an MCU reset, under a handle this session never learnt:
            // only a module reboot closes it.
            Err(ClientError::Rejected(Rejection::Cme(ModemCode::Numeric(FILE_ALREADY_OPEN)))) => {
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        self.file = Some(handle);
        if offset > 0 {
            let seek = SeekFile {
                handle,
                offset,
                origin: SeekOrigin::Start,
            };
            self.client.send(&seek).await?;
        }
        Ok(true)
    }

    #[cfg(feature = "modem-file")]
    async fn read_stored(&mut self, buf: &mut [u8]) -> Res<usize, T::Error> {
        use crate::quectel::file::ReadFile;
        let Some(handle) = self.file else {
            return Err(ModemFailure::Modem(ClientError::Protocol(
                "no module file open",
            )));
        };
        let read = ReadFile {
            handle,
            len: Some(u32::try_from(buf.len()).unwrap_or(u32::MAX)),
        };
        let mut reader = self.client.read_data(&read).await?;
        let mut n = 0usize;
        loop {
            let slice = reader.fill_buf().await?;
            if slice.is_empty() {
                break;
            }
            let k = slice.len();
            if n + k > buf.len() {
                return Err(ModemFailure::Length {
                    expected: buf.len() as u32,
                    got: (n + k) as u32,
                });
            }
            buf[n..n + k].copy_from_slice(slice);
            n += k;
            reader.consume(k);
        }
        reader.finish_response(&read).await?;
        Ok(n)
    }

    #[cfg(feature = "modem-file")]
    async fn close_stored(&mut self) -> Res<(), T::Error> {
        if let Some(handle) = self.file.take() {
            self.client
                .send(&crate::quectel::file::CloseFile { handle })
                .await?;
        }
        Ok(())
    }
}

/// Configures the SSL context for an https:// URL (and uploads the CA certificate).
#[cfg(feature = "https")]
async fn tls_setup<T, C, H>(
    client: &mut Client<'_, T, C, H>,
    cfg: &UpdateConfig<'_>,
) -> Res<(), T::Error>
where
    T: Read + Write,
    C: AsyncClock,
    H: UrcHandler,
{
    use crate::quectel::file::{DeleteFile, UploadFile};
    use crate::quectel::ssl::{SetSslConfig, SslConfig};
    let tls: crate::update::Tls<'_> = cfg.tls.unwrap_or_default();
    let ctx = tls.ssl_ctx;
    for config in [
        SslConfig::SslVersion(tls.version),
        SslConfig::SecLevel(tls.sec_level),
        SslConfig::Sni(tls.sni),
        SslConfig::IgnoreLocalTime(tls.ignore_local_time),
    ] {
        client.send(&SetSslConfig { ctx, config }).await?;
    }
    if let Some(ca) = tls.ca_cert {
        // Replace the file, then check what the module stored.
        let _ = client.send(&DeleteFile::new(ca.file)).await;
        let stored = client.send(&UploadFile::new(ca.file, ca.pem)).await?;
        if stored.verify(ca.pem).is_err() {
            return Err(ModemFailure::Checksum);
        }
        let config = SslConfig::CaCert(ca.file);
        client.send(&SetSslConfig { ctx, config }).await?;
    }
    client.send(&HttpConfig::SslContextId(ctx)).await?;
    Ok(())
}

/// How many bytes at the end of a body are kept to recognise a trailer that was counted as
/// body (bytes lost on the UART).
const TAIL: usize = 32;

/// The body of an `AT+QHTTPREAD`: the bytes after `CONNECT`, then the `+QHTTPREAD: <err>`
/// result (before `OK` or as a URC) checked by [`finish`](HttpBody::finish).
pub struct QuectelBody<'r, 'b, T, C, H> {
    reader: DataReader<'r, 'b, T, C, H>,
    read: HttpRead,
    /// The last bytes handed out.
    tail: [u8; TAIL],
    tail_len: usize,
}

impl<T, C, H> core::fmt::Debug for QuectelBody<'_, '_, T, C, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QuectelBody")
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl<T, C, H> HttpBody for QuectelBody<'_, '_, T, C, H>
where
    T: Read + Write,
    T::Error: embedded_io_async::Error,
    C: AsyncClock,
    H: UrcHandler,
{
    type Error = T::Error;

    async fn fill_buf(&mut self) -> Res<&[u8], T::Error> {
        match self.reader.fill_buf().await {
            Ok(s) => Ok(s),
            Err(e) => Err(lost_or(&self.tail[..self.tail_len], e)),
        }
    }

    fn consume(&mut self, n: usize) {
        let (tail, len) = (&mut self.tail, &mut self.tail_len);
        self.reader
            .consume_seen(n, |taken| keep_tail(tail, len, taken));
    }

    async fn finish(mut self) -> Res<u64, T::Error> {
        let (early, total) = match self.reader.finish_in_place(&self.read, |early| early).await {
            Ok(r) => r,
            Err(e) => return Err(lost_or(&self.tail[..self.tail_len], e)),
        };
        let client = self.reader.client();
        let code = match early {
            Some(c) => c,
            None => {
                let wait = Duration::from_secs(u64::from(self.read.wait_time) + 1);
                let r = client
                    .wait_for(wait, |line| match DownloadUrc::parse(line) {
                        Some(DownloadUrc::HttpRead(r)) => Some(Some(r)),
                        // The modem restarted before it said how the body ended.
                        Some(DownloadUrc::Ready) => Some(None),
                        _ => None,
                    })
                    .await?;
                match r {
                    Some(Ok(())) => 0,
                    Some(Err(e)) => e.code(),
                    None => return Err(ModemFailure::ModemRebooted),
                }
            }
        };
        match code {
            0 => Ok(total),
            c => Err(ModemFailure::Http(HttpError::from_code(c))),
        }
    }
}

fn keep_tail(tail: &mut [u8; TAIL], len: &mut usize, new: &[u8]) {
    if new.len() >= TAIL {
        tail.copy_from_slice(&new[new.len() - TAIL..]);
        *len = TAIL;
    } else {
        let keep = (*len).min(TAIL - new.len());
        tail.copy_within(*len - keep..*len, 0);
        tail[keep..keep + new.len()].copy_from_slice(new);
        *len = keep + new.len();
    }
}

/// A body that timed out with the modem's `\r\nOK\r\n` among its last bytes lost bytes on
/// the UART: the trailer filled the count. A `+QHTTPREAD: <err>` there means the modem ended
/// the body itself (the server closed early). Otherwise the error stands.
fn lost_or<E>(tail: &[u8], e: ClientError<E>) -> ModemFailure<E> {
    const OK: &[u8] = b"\r\nOK\r\n";
    const RESULT: &[u8] = b"+QHTTPREAD: ";
    if matches!(e, ClientError::Timeout) {
        if let Some(p) = tail.windows(RESULT.len()).rposition(|w| w == RESULT) {
            let digits = tail[p + RESULT.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u32, |v, &b| {
                    v.saturating_mul(10).saturating_add(u32::from(b - b'0'))
                });
            if digits != 0 {
                let code = u16::try_from(digits).unwrap_or(u16::MAX);
                return ModemFailure::Http(HttpError::from_code(code));
            }
        }
        if let Some(p) = tail.windows(OK.len()).rposition(|w| w == OK) {
            return ModemFailure::BytesLost {
                at_least: (tail.len() - p) as u32,
            };
        }
    }
    e.into()
}
