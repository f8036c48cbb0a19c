//! Every error and result code SIMCom documents for HTTP(S), TCP/IP, `+CME ERROR` and module
//! FOTA (`simcom-at.md` §4 and §6), as open enums.
//!
//! Each table is an enum with one variant per documented code and a final `Unknown(u16)`
//! variant, so a code new firmware invents never becomes a parse failure; each has
//! `from_code`, `code`, `meaning` (one line of plain English) and a `Display` that prints
//! `<code>: <meaning>`.
//!
//! The same number means different things in different places: SIM7070's `+CME ERROR: 601`
//! is "unrecognized command", while `601` in the status field of `+HTTPACTION:` or `+SHREQ:`
//! is "network error". The table follows from the line's prefix, never from the number:
//!
//! | Seen in | Decode with |
//! |---|---|
//! | `+HTTPACTION: <m>,<status>,<len>`, `+SHREQ:`, `+HTTPTOFS:` status 600–699 and 65535 | [`ModuleStatus`] |
//! | `+HTTPACTION: <m>,<errcode>,0`, `+HTTPREADFILE: <err>`, `+HTTPPOSTFILE:` 701–720 | [`HttpError`], [`http_result`] |
//! | `+NETOPEN: <err>`, `+CIPOPEN: <link>,<err>`, `+CIPCLOSE:`, `+CIPERROR: <err>` | [`NetError`] |
//! | `+IP ERROR: <n>` (numeric error mode) | [`IpError`] |
//! | `+CAOPEN: <cid>,<result>` (SIM7070/7080/7090) | [`CaOpenError`] |
//! | `+CME ERROR: <n>` | [`CmeError::from_code`] |
//! | `+CSCFOTA: <n>` (SIM7600 cloud FOTA) | [`CscFotaResult`] |
//! | `+CFOTA: <n>` (A76xx / SIM767x FOTA) | [`CfotaError`] |
//!
//! ```
//! use cellular_ota::simcom::error::{CmeError, HttpError, ModuleStatus, SimcomCme, http_result};
//! assert_eq!(http_result(0), Ok(()));
//! assert_eq!(http_result(706), Err(HttpError::SocketDataFailed));
//! assert_eq!(ModuleStatus::from_code(601).meaning(), "network error");
//! // The same number after `+CME ERROR:` is another table.
//! assert_eq!(CmeError::from_code(601), CmeError::Simcom(SimcomCme::UnrecognizedCommand));
//! ```

use crate::code_enum::code_enum;
use crate::quectel::error::EquipmentError;

code_enum! {
    /// A status the module generates itself, reported in the HTTP status field of
    /// `+HTTPACTION:` (SIM7600, A76xx), `+SHREQ:` and `+HTTPTOFS:` (SIM7000, SIM7070/80/90)
    /// instead of the server's status (`simcom-at.md` §4.1).
    pub enum ModuleStatus {
        NotHttpPdu = 600 => "not an HTTP PDU",
        /// SIM7000 answers 601 when no data connection is active.
        NetworkError = 601 => "network error",
        /// SIM7000/7070 `AT+SH*` answer 602 for bodies above about 40 KB: request ranges.
        NoMemory = 602 => "no memory",
        DnsError = 603 => "DNS error",
        StackBusy = 604 => "stack busy",
        /// SIM7000/7070 `+HTTPTOFS:` only.
        SslContinue = 620 => "SSL continue",
        /// SIM7000/7070 `+HTTPTOFS:` only.
        OtherError = 65535 => "other error",
    }
    unknown => "module status not in SIMCom's table";
}

impl ModuleStatus {
    /// True for a code the module generates in the status field (600–699 and 65535), as
    /// opposed to a server's HTTP status (100–599) or an error code (700–799).
    pub const fn is_module_status(code: u16) -> bool {
        matches!(code, 600..=699 | 65535)
    }
}

code_enum! {
    /// The `<errcode>` of `+HTTPACTION: <method>,<errcode>,0` and the `<err>` of
    /// `+HTTPREADFILE:` / `+HTTPPOSTFILE:` on SIM7600, A76xx and SIM767x (`simcom-at.md`
    /// §4.2). `0` (success) is not an error and has no variant: use [`http_result`].
    pub enum HttpError {
        AlertState = 701 => "alert state",
        /// SIM7600E-H LE11B14 answered 702 to HTTPS requests.
        UnknownError = 702 => "unknown error",
        Busy = 703 => "busy",
        ConnectionClosed = 704 => "connection closed",
        Timeout = 705 => "timeout",
        /// SIM7670G answers 706 when the body exceeds the module's storage (about 288 KB
        /// free; `AT+FSMEM` says): request ranges.
        SocketDataFailed = 706 => "receive/send socket data failed",
        FileOrMemory = 707 => "file does not exist, or another memory error",
        InvalidParameter = 708 => "invalid parameter",
        NetworkError = 709 => "network error",
        SslSessionFailed = 710 => "starting a new SSL session failed",
        WrongState = 711 => "wrong state",
        SocketCreateFailed = 712 => "failed to create socket",
        DnsFailed = 713 => "DNS lookup failed",
        SocketConnectFailed = 714 => "connecting the socket failed",
        /// A7670/A7608/SIM7670G: fixed by SIMCom firmware updates.
        HandshakeFailed = 715 => "TLS handshake failed",
        SocketCloseFailed = 716 => "closing the socket failed",
        NoNetwork = 717 => "no network",
        SendTimeout = 718 => "send data timeout",
        CaMissing = 719 => "CA certificate missing",
        /// SIM7600 only (absent from the A76xx manual V1.09).
        ServerResponseTimeout = 720 => "server response timeout",
    }
    unknown => "HTTP error not in SIMCom's table";
}

/// `Ok(())` for `0`, else the [`HttpError`].
pub const fn http_result(code: u16) -> Result<(), HttpError> {
    match code {
        0 => Ok(()),
        c => Err(HttpError::from_code(c)),
    }
}

code_enum! {
    /// The `<err>` of `+NETOPEN:`, `+NETCLOSE:`, `+CIPOPEN:`, `+CIPCLOSE:` and `+CIPERROR:`
    /// on SIM7600 and A76xx (`simcom-at.md` §4.3). `0` (success) has no variant.
    pub enum NetError {
        NetworkFailure = 1 => "network failure",
        NetworkNotOpened = 2 => "network not opened",
        /// SIM7600 also answers `+CIPERROR: 3` to a `CIPSEND` above the MTU (1500 bytes).
        WrongParameter = 3 => "wrong parameter",
        NotSupported = 4 => "operation not supported",
        SocketCreateFailed = 5 => "failed to create socket",
        SocketBindFailed = 6 => "failed to bind socket",
        AlreadyListening = 7 => "TCP server is already listening",
        Busy = 8 => "busy",
        SocketsOpened = 9 => "sockets opened",
        Timeout = 10 => "timeout",
        DnsFailed = 11 => "DNS lookup for AT+CIPOPEN failed",
        UnknownError = 12 => "unknown error",
    }
    unknown => "TCP/IP error not in SIMCom's table";
}

code_enum! {
    /// `+IP ERROR: <n>` with `AT+CIPCCFG` error mode 0 (numeric), SIM7600 and A76xx
    /// (`simcom-at.md` §4.3). SIM7600's manual lists 21 twice ("Operation failed" and "No
    /// data"); the A76xx numbering (21 and 22) is used.
    pub enum IpError {
        ConnectionTimeout = 0 => "connection timed out",
        BindPortFailed = 1 => "bind port failed",
        PortOverflow = 2 => "port overflow",
        CreateSocketFailed = 3 => "create socket failed",
        NetworkAlreadyOpen = 4 => "network is already opened",
        NetworkAlreadyClosed = 5 => "network is already closed",
        NoClients = 6 => "no clients connected",
        NoActiveClient = 7 => "no active client",
        NetworkNotOpened = 8 => "network not opened",
        ClientIndexOverflow = 9 => "client index overflow",
        ConnectionExists = 10 => "connection is already created",
        NoConnection = 11 => "connection is not created",
        InvalidParameter = 12 => "invalid parameter",
        NotSupported = 13 => "operation not supported",
        DnsFailed = 14 => "DNS query failed",
        TcpBusy = 15 => "TCP busy",
        NetcloseFailed = 16 => "netclose failed for socket opened",
        SendTimeout = 17 => "sending timed out",
        SendNetworkError = 18 => "sending failed for a network error",
        OpenNetworkError = 19 => "open failed for a network error",
        ServerListening = 20 => "server is already listening",
        OperationFailed = 21 => "operation failed",
        NoData = 22 => "no data",
    }
    unknown => "IP error not in SIMCom's table";
}

code_enum! {
    /// The `<result>` of `+CAOPEN: <cid>,<result>` on SIM7070/7080/7090 (`simcom-at.md`
    /// §4.4). `0` (success) has no variant.
    pub enum CaOpenError {
        SocketError = 1 => "socket error",
        NoMemory = 2 => "no memory",
        ConnectionLimit = 3 => "connection limit",
        InvalidParameter = 4 => "parameter invalid",
        InvalidIp = 6 => "invalid IP address",
        NotSupported = 7 => "function not supported",
        CannotBind = 12 => "cannot bind the port",
        CannotListen = 13 => "cannot listen on the port",
        UnresolvedHost = 20 => "cannot resolve the host",
        NetworkNotActive = 21 => "network not active",
        Refused = 23 => "remote refused",
        CertificateExpired = 24 => "certificate's time expired",
        CommonNameMismatch = 25 => "certificate's common name does not match",
        NameAndTimeMismatch = 26 => "common name mismatch and time expired",
        ConnectFailed = 27 => "connect failed",
    }
    unknown => "CAOPEN result not in SIMCom's table";
}

code_enum! {
    /// SIMCom's own `+CME ERROR` codes (SIM7070/7080/7090 manual §22.1; `simcom-at.md`
    /// §4.5). SIM7600's additions (201–214 FTP, 257–275 network) and SIM7070's MMS (171–193)
    /// and SIM toolkit (753–759) codes are documented without per-code meanings and decode
    /// as [`SimcomCme::Unknown`].
    pub enum SimcomCme {
        DnsFailed = 160 => "DNS resolve failed",
        SocketOpenFailed = 161 => "socket open failed",
        NoError = 600 => "no error",
        UnrecognizedCommand = 601 => "unrecognized command",
        ReturnValueError = 602 => "return value error",
        SyntaxError = 603 => "syntax error",
        UnspecifiedError = 604 => "unspecified error",
        DataTransferAlready = 605 => "data transfer already",
        ActionAlready = 606 => "action already",
        NotAtCommand = 607 => "not an AT command",
        MultiCommandTooLong = 608 => "multiple commands too long",
        AbortCops = 609 => "abort COPS",
        NoCallDisconnect = 610 => "no call to disconnect",
        BtSap611 = 611 => "BT SAP error",
        BtSap612 = 612 => "BT SAP error",
        BtSap613 = 613 => "BT SAP error",
        NotAllowedByCustomer = 614 => "AT command not allowed by the customer",
        InvalidInputValue = 765 => "invalid input value",
        UnsupportedMode = 766 => "unsupported mode",
        OperationFailed = 767 => "operation failed",
        MuxRunning = 768 => "mux already running",
        NoControl = 769 => "unable to get control",
        SimNetworkReject = 770 => "SIM network reject",
        CallSetupInProgress = 771 => "call setup in progress",
        SimPoweredDown = 772 => "SIM powered down",
        SimFileMissing = 773 => "SIM file not present",
        TooFewParameters = 791 => "parameter count not enough",
        TooManyParameters = 792 => "parameter count beyond",
        ParameterOutOfRange = 793 => "parameter value out of range",
        ParameterTypeMismatch = 794 => "parameter type does not match",
        ParameterFormatInvalid = 795 => "parameter format invalid",
        NullParameter = 796 => "got a null parameter",
        /// The module is in flight mode or minimum functionality: `AT+CFUN=1` first.
        CfunOff = 797 => "CFUN state is 0 or 4",
    }
    unknown => "SIMCom CME error without a documented meaning";
}

/// The decoded argument of `+CME ERROR: <n>` on a SIMCom module: the 3GPP TS 27.007 set
/// (0–150) or SIMCom's own codes. Never confused with the HTTP status field's 600–604
/// ([`ModuleStatus`]): the `+CME ERROR:` prefix chose this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CmeError {
    /// 0–150: the 3GPP set (`AT+CMEE=2` prints the meaning as text).
    Equipment(EquipmentError),
    /// Everything above 150: SIMCom's additions.
    Simcom(SimcomCme),
}

impl CmeError {
    /// The error for `code`: 0–150 from the 3GPP table, anything else from SIMCom's.
    pub const fn from_code(code: u16) -> Self {
        match code {
            0..=150 => CmeError::Equipment(EquipmentError::from_code(code)),
            _ => CmeError::Simcom(SimcomCme::from_code(code)),
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        match self {
            CmeError::Equipment(e) => e.code(),
            CmeError::Simcom(e) => e.code(),
        }
    }

    /// One line of plain English.
    pub const fn meaning(self) -> &'static str {
        match self {
            CmeError::Equipment(e) => e.meaning(),
            CmeError::Simcom(e) => e.meaning(),
        }
    }
}

impl core::fmt::Display for CmeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.code(), self.meaning())
    }
}

impl core::error::Error for CmeError {}

code_enum! {
    /// `+CSCFOTA: <n>`, SIMCom's cloud FOTA on SIM7600 (`simcom-at.md` §6.1). Codes 2–4 are
    /// progress, not errors.
    pub enum CscFotaResult {
        UnknownError = 1 => "unknown error",
        VersionChecked = 2 => "version check finished",
        Downloaded = 3 => "download finished",
        PartlyDownloaded = 4 => "download partly finished",
        NoMatchingVersion = 5 => "no matching version",
        NoMemory = 301 => "not enough memory",
        InvalidParameter = 302 => "invalid parameter",
        InvalidOperation = 303 => "invalid operation",
        IoFailed = 304 => "I/O failed",
        IoTimeout = 305 => "I/O timeout",
        VerificationFailed = 306 => "downloaded file failed verification",
        Canceled = 307 => "canceled",
        InterfaceNesting = 308 => "interface nesting error",
        InvalidDevice = 401 => "invalid device information",
        InvalidPlatform = 402 => "invalid platform information",
        MissingDevice = 403 => "missing device information",
        NoVersionConfigured = 404 => "version number not configured",
        InternalError = 405 => "internal error",
        InvalidUrl = 501 => "invalid URL",
        DnsFailed = 502 => "unable to resolve the domain name",
        CannotConnect = 503 => "cannot connect to the server",
        BadRequest = 504 => "invalid request, or the server returned an error",
        NotInRange = 505 => "not in range",
        PostFailed = 506 => "HTTP POST request error",
        RedownloadFailed = 507 => "re-download start error",
        Aborted = 508 => "operation aborted",
        NotCompleted = 509 => "operation not completed",
        TooManyRedirects = 510 => "too many redirections",
        SocketNoData = 511 => "unable to get data from the socket",
        SocketSendError = 512 => "error sending data over the socket",
        SocketReceiveError = 513 => "error receiving data over the socket",
        InvalidSocket = 514 => "invalid socket connection",
    }
    unknown => "cloud FOTA result not in SIMCom's table";
}

code_enum! {
    /// `+CFOTA: <err>` (or `ERROR: <err>`) of `AT+CFOTA` on A76xx and SIM767x
    /// (`simcom-at.md` §6.2).
    pub enum CfotaError {
        /// The manual adds "maybe PDP was active".
        InvalidUrl = 1001 => "URL invalid",
        Timeout = 1002 => "timeout",
        UnknownUrl = 1003 => "URL unknown",
        BadCredentials = 1004 => "username or password error",
        FileMissing = 1005 => "file does not exist",
        BadFileSize = 1006 => "size of the FOTA file invalid",
        GetFileFailed = 1007 => "getting the file failed",
        CheckFailed = 1008 => "file check error",
        InternalError = 1009 => "internal error",
        FileTooLarge = 1010 => "file too large",
        SetFlagFailed = 1011 => "setting the update flag failed",
        ParameterSize = 1012 => "parameter size error",
    }
    unknown => "FOTA error not in SIMCom's table";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table: codes ascend, `from_code` and `code` invert each other, meanings are
    /// non-empty and unknown codes stay numeric.
    macro_rules! table_invariants {
        ($($t:ident),+) => {$(
            let known = $t::KNOWN;
            assert!(known.windows(2).all(|w| w[0].code() < w[1].code()), stringify!($t));
            for &v in known {
                assert_eq!($t::from_code(v.code()), v);
                assert!(!v.meaning().is_empty());
                assert!(!matches!(v, $t::Unknown(_)));
            }
            let free = (0..=u16::MAX).find(|c| !known.iter().any(|v| v.code() == *c)).unwrap();
            assert_eq!($t::from_code(free), $t::Unknown(free));
            assert_eq!($t::from_code(free).code(), free);
        )+};
    }

    #[test]
    fn every_table_round_trips() {
        table_invariants!(
            ModuleStatus,
            HttpError,
            NetError,
            IpError,
            CaOpenError,
            SimcomCme,
            CscFotaResult,
            CfotaError
        );
    }

    #[test]
    fn colliding_numbers_follow_the_table_the_prefix_chose() {
        for code in 600..=604 {
            let status = ModuleStatus::from_code(code);
            let cme = CmeError::from_code(code);
            assert!(!matches!(status, ModuleStatus::Unknown(_)));
            assert!(matches!(cme, CmeError::Simcom(s) if !matches!(s, SimcomCme::Unknown(_))));
            assert_ne!(status.meaning(), cme.meaning(), "{code}");
        }
        assert_eq!(
            CmeError::from_code(13),
            CmeError::Equipment(EquipmentError::from_code(13))
        );
        assert_eq!(CmeError::from_code(797).meaning(), "CFUN state is 0 or 4");
        assert_eq!(
            CmeError::from_code(180),
            CmeError::Simcom(SimcomCme::Unknown(180))
        );
    }

    #[test]
    fn displays_code_and_meaning() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(HttpError::DnsFailed.to_string(), "713: DNS lookup failed");
        assert_eq!(CmeError::from_code(603).to_string(), "603: syntax error");
        assert_eq!(http_result(0), Ok(()));
        assert_eq!(http_result(719), Err(HttpError::CaMissing));
        assert!(ModuleStatus::is_module_status(65535) && !ModuleStatus::is_module_status(206));
    }
}
