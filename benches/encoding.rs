//! Typed commands encoded per second, against `core::fmt::write` of the same lines.
//!
//! One unit of work is a mix of six command lines as a firmware update sends them
//! (`AT+QICSGP`, `AT+QSSLCFG`, `AT+QHTTPURL`, `AT+QHTTPGETEX`, `AT+QFUPL`, `AT+QFOTADL`), each
//! written with its CR into the same 256-byte buffer, as the client does before a write.
//!
//! * `typed`: `AtCommand::encode` through the fallible `Encoder`. This includes the checks
//!   that make a typed command safe to send (URL parsed, every string parameter scanned for
//!   quotes and control bytes, lengths and ranges checked, file names checked).
//! * `fmt`: `core::fmt::write` of the same lines with `format_args!` into a bounded slice
//!   writer (fallible on a short buffer too), and no checks at all.

mod common;

use core::fmt;
use std::hint::black_box;
use std::time::Duration;

use cellular_ota::at::{AtCommand, EncodeError, Encoder};
use cellular_ota::quectel::file::UploadFile;
use cellular_ota::quectel::fota::{FotaDownload, FotaOptions, UpgradeMode};
use cellular_ota::quectel::http::{HttpGetRange, SetHttpUrl};
use cellular_ota::quectel::pdp::{AuthMethod, ConfigureContext, PdpType};
use cellular_ota::quectel::ssl::{SetSslConfig, SslConfig};
use common::{Contender, Mode};
use criterion::Throughput;

const LINES: u64 = 6;

static UPLOAD: [u8; 4096] = [0x5a; 4096];

/// The commands of one unit of work.
struct Mix {
    ctx: ConfigureContext<'static>,
    ssl: SetSslConfig<'static>,
    url: SetHttpUrl<'static>,
    range: HttpGetRange,
    upload: UploadFile<'static>,
    fota: FotaDownload<'static>,
}

fn mix() -> Mix {
    Mix {
        ctx: ConfigureContext {
            cid: 1,
            pdp_type: PdpType::Ipv4,
            apn: "internet.iot.example",
            user: "",
            password: "",
            auth: AuthMethod::None,
        },
        ssl: SetSslConfig {
            ctx: 1,
            config: SslConfig::CaCert("UFS:cacert.pem"),
        },
        url: SetHttpUrl::new("https://fw.example.com/releases/v2.4.1/app.bin"),
        range: HttpGetRange::new(786_432, 65_536),
        upload: UploadFile::new("UFS:fw_part.bin", &UPLOAD),
        fota: FotaDownload::url("http://fota.example.com/EC200U_delta.pack").with_options(
            FotaOptions {
                upgrade_mode: UpgradeMode::Immediate,
                download_urc_max: 50,
                update_urc_max: Some(100),
            },
        ),
    }
}

/// What the client does before writing a command: the line plus CR.
fn line<C: AtCommand>(cmd: &C, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let mut enc = Encoder::new(buf);
    cmd.encode(&mut enc)?;
    enc.raw(b"\r")?;
    Ok(enc.len())
}

/// Encodes the mix with the typed commands; calls `sink` with every line.
fn typed(m: &Mix, buf: &mut [u8], sink: &mut impl FnMut(&[u8])) {
    let n = line(&m.ctx, buf).unwrap();
    sink(&buf[..n]);
    let n = line(&m.ssl, buf).unwrap();
    sink(&buf[..n]);
    let n = line(&m.url, buf).unwrap();
    sink(&buf[..n]);
    let n = line(&m.range, buf).unwrap();
    sink(&buf[..n]);
    let n = line(&m.upload, buf).unwrap();
    sink(&buf[..n]);
    let n = line(&m.fota, buf).unwrap();
    sink(&buf[..n]);
}

/// A bounded `fmt::Write` into a byte slice.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn fmt_line(buf: &mut [u8], args: fmt::Arguments<'_>) -> usize {
    let mut w = SliceWriter { buf, len: 0 };
    fmt::write(&mut w, args).unwrap();
    w.len
}

/// The same lines with `core::fmt`, from the same values.
fn formatted(m: &Mix, buf: &mut [u8], sink: &mut impl FnMut(&[u8])) {
    let c = &m.ctx;
    let n = fmt_line(
        buf,
        format_args!(
            "AT+QICSGP={},{},\"{}\",\"{}\",\"{}\",{}\r",
            c.cid,
            c.pdp_type.code(),
            c.apn,
            c.user,
            c.password,
            c.auth.code()
        ),
    );
    sink(&buf[..n]);
    let SslConfig::CaCert(file) = m.ssl.config else {
        unreachable!()
    };
    let n = fmt_line(
        buf,
        format_args!("AT+QSSLCFG=\"cacert\",{},\"{}\"\r", m.ssl.ctx, file),
    );
    sink(&buf[..n]);
    let n = fmt_line(
        buf,
        format_args!("AT+QHTTPURL={},{}\r", m.url.url.len(), m.url.timeout),
    );
    sink(&buf[..n]);
    let r = &m.range;
    let n = fmt_line(
        buf,
        format_args!("AT+QHTTPGETEX={},{},{}\r", r.response_time, r.start, r.len),
    );
    sink(&buf[..n]);
    let n = fmt_line(
        buf,
        format_args!("AT+QFUPL=\"{}\",{}\r", m.upload.name, m.upload.data.len()),
    );
    sink(&buf[..n]);
    let cellular_ota::quectel::fota::FotaSource::Url(url) = m.fota.source else {
        unreachable!()
    };
    let o = m.fota.options.unwrap();
    let n = fmt_line(
        buf,
        format_args!(
            "AT+QFOTADL=\"{}\",{},{},{}\r",
            url,
            o.upgrade_mode as u8,
            o.download_urc_max,
            o.update_urc_max.unwrap()
        ),
    );
    sink(&buf[..n]);
}

/// One unit of work, returning the bytes written (kept alive with `black_box`).
fn run_typed(m: &Mix, buf: &mut [u8]) -> usize {
    let mut total = 0;
    typed(black_box(m), buf, &mut |l| total += black_box(l).len());
    total
}

fn run_fmt(m: &Mix, buf: &mut [u8]) -> usize {
    let mut total = 0;
    formatted(black_box(m), buf, &mut |l| total += black_box(l).len());
    total
}

fn main() {
    let mode = common::mode();
    let m = mix();
    let mut buf = [0u8; 256];

    // Both sides must write the same bytes.
    let mut ours: Vec<Vec<u8>> = Vec::new();
    typed(&m, &mut buf, &mut |l| ours.push(l.to_vec()));
    let mut theirs: Vec<Vec<u8>> = Vec::new();
    formatted(&m, &mut buf, &mut |l| theirs.push(l.to_vec()));
    assert_eq!(ours.len() as u64, LINES);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            "typed and fmt lines differ"
        );
    }
    let bytes: usize = ours.iter().map(Vec::len).sum();

    let mut c = common::criterion();
    {
        let mut g = c.benchmark_group("encoding");
        g.throughput(Throughput::Elements(LINES));
        g.bench_function("typed", |b| b.iter(|| run_typed(&m, &mut buf)));
        g.bench_function("fmt", |b| b.iter(|| run_fmt(&m, &mut buf)));
        g.finish();
    }
    c.final_summary();

    if mode == Mode::Test {
        println!("encoding: test mode, both sides checked once; no ratios");
        return;
    }

    let buf = std::cell::RefCell::new(buf);
    let mut contenders = [
        Contender::new("typed", || {
            black_box(run_typed(&m, &mut *buf.borrow_mut()));
        }),
        Contender::new("fmt", || {
            black_box(run_fmt(&m, &mut *buf.borrow_mut()));
        }),
    ];
    let s = common::interleaved(&mut contenders, 101, Duration::from_millis(5));
    let cmds = |i: usize| common::rate(LINES as f64, s.median(i), "cmd");
    println!(
        "RATIO encoding typed/fmt = {:.2} (typed {}, fmt {}; {} lines, {} bytes per mix)",
        s.speedup(0, 1),
        cmds(0),
        cmds(1),
        LINES,
        bytes
    );
}
