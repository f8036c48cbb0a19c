//! Every error code Quectel documents for the commands this crate uses, as open enums.
//!
//! Each table (reference §5) is an enum with one variant per documented code and a final
//! `Unknown(u16)` variant, so a code that new firmware invents never becomes a parse failure.
//! Every enum has `from_code`, `code`, `meaning` (one line of plain English) and a `Display`
//! that prints `<code>: <meaning>`.
//!
//! Where a code comes from decides its table:
//!
//! | Seen in | Decode with |
//! |---|---|
//! | `+CME ERROR: <n>` or `+CME ERROR: <text>` | [`CmeError::from_code`], [`CmeError::from_text`] |
//! | `+CMS ERROR: <n>` | [`CmsError`] |
//! | `+QHTTPGET: <err>`, `+QHTTPREAD: <err>`, `+QIND: "FOTA","HTTPEND",<err>` | [`http_result`] |
//! | `+QIND: "FOTA","FTPEND",<err>` | [`ftp_result`] |
//! | `+QIND: "FOTA","FILEEND",<err>` | [`FileEndError`] |
//! | `+QIND: "FOTA","END",<err>` | [`FotaEndCode`] (the table depends on the [`ChipFamily`]) |
//! | anything, for a log line | [`describe`] |
//!
//! ```
//! use cellular_ota::quectel::error::{CmeError, HttpError, http_result};
//! assert_eq!(http_result(0), Ok(()));
//! assert_eq!(http_result(714), Err(HttpError::DnsError));
//! assert_eq!(CmeError::from_code(407).meaning(), "file already exists");
//! assert_eq!(CmeError::from_text(b"file already exist"), Some(CmeError::from_code(407)));
//! ```

use super::ChipFamily;
use crate::at::ErrorCode;
use crate::code_enum::code_enum;

code_enum! {
    /// HTTP(S) error `<err>` (reference §5.1), reported by `+QHTTPGET:`, `+QHTTPPOST:`,
    /// `+QHTTPREAD:`, `+QHTTPREADFILE:`, `+CME ERROR:` and `+QIND: "FOTA","HTTPEND",<err>`.
    ///
    /// `0` (success) is not an error and has no variant: use [`http_result`].
    pub enum HttpError {
        UnknownError = 701 => "unknown HTTP error",
        /// Network loss during a FOTA download also ended with this code.
        Timeout = 702 => "timeout",
        Busy = 703 => "busy",
        /// Send `AT+QHTTPSTOP` before retrying.
        UartBusy = 704 => "UART busy",
        /// Also the answer to `AT+QHTTPREAD` when nothing was requested.
        NoRequest = 705 => "no GET/POST/PUT request",
        NetworkBusy = 706 => "network busy",
        NetworkOpenFailed = 707 => "network open failed",
        NetworkNotConfigured = 708 => "network not configured",
        NetworkDeactivated = 709 => "network deactivated",
        NetworkError = 710 => "network error",
        /// EG800K answers a redirect to a relative `Location` with this code.
        UrlError = 711 => "URL error",
        EmptyUrl = 712 => "empty URL",
        IpAddressError = 713 => "IP address error",
        /// EG800K reported DNS failures as 716 instead.
        DnsError = 714 => "DNS error",
        SocketCreateError = 715 => "socket create error",
        /// Also seen for DNS and TLS failures.
        SocketConnectError = 716 => "socket connect error",
        SocketReadError = 717 => "socket read error",
        SocketWriteError = 718 => "socket write error",
        SocketClosed = 719 => "socket closed",
        DataEncodeError = 720 => "data encode error",
        DataDecodeError = 721 => "data decode error",
        ReadTimeout = 722 => "read timeout",
        ResponseFailed = 723 => "response failed",
        IncomingCallBusy = 724 => "incoming call busy",
        VoiceCallBusy = 725 => "voice call busy",
        InputTimeout = 726 => "input timeout",
        WaitDataTimeout = 727 => "wait data timeout",
        WaitResponseTimeout = 728 => "wait HTTP(S) response timeout",
        MemoryAllocationFailed = 729 => "memory allocation failed",
        InvalidParameter = 730 => "invalid parameter",
    }
    unknown => "HTTP error code not in Quectel's documented table";
}

/// The outcome of an HTTP `<err>` field: `0` is success, anything else an [`HttpError`].
///
/// ```
/// use cellular_ota::quectel::error::{HttpError, http_result};
/// assert_eq!(http_result(0), Ok(()));
/// assert_eq!(http_result(702), Err(HttpError::Timeout));
/// assert_eq!(http_result(608), Err(HttpError::Unknown(608)));
/// ```
pub const fn http_result(code: u16) -> Result<(), HttpError> {
    match code {
        0 => Ok(()),
        code => Err(HttpError::from_code(code)),
    }
}

code_enum! {
    /// FTP(S) error `<err>` (reference §5.2), reported by the FTP commands and by
    /// `+QIND: "FOTA","FTPEND",<err>`.
    ///
    /// `0` (success) has no variant: use [`ftp_result`]. EC200U also reported `608` in
    /// `+QIND: "FOTA","HTTPEND",608` when `AT+QCFG="fota/path"` was misconfigured.
    pub enum FtpError {
        UnknownError = 601 => "unknown FTP error",
        ServiceBlocked = 602 => "FTP service blocked",
        /// EG800K: a previous `AT+QFTPCLOSE` was still in progress.
        Busy = 603 => "FTP busy",
        DnsParseFailed = 604 => "DNS parse failed",
        NetworkError = 605 => "network error",
        ControlConnectionClosed = 606 => "control connection closed",
        DataConnectionClosed = 607 => "data connection closed",
        SocketClosedByPeer = 608 => "socket closed by peer",
        Timeout = 609 => "timeout",
        InvalidParameter = 610 => "invalid parameter",
        FileOpenFailed = 611 => "failed to open file",
        InvalidFilePosition = 612 => "file position invalid",
        FileError = 613 => "file error",
        ServiceNotAvailable = 614 => "service not available, closing control connection",
        DataConnectionOpenFailed = 615 => "open data connection failed",
        TransferAborted = 616 => "connection closed, transfer aborted",
        FileActionNotTaken = 617 => "requested file action not taken",
        LocalProcessingError = 618 => "local error in processing",
        InsufficientStorage = 619 => "insufficient storage",
        CommandUnrecognized = 620 => "syntax error, command unrecognized",
        ParameterSyntaxError = 621 => "syntax error in parameters",
        CommandNotImplemented = 622 => "command not implemented",
        BadCommandSequence = 623 => "bad command sequence",
        ParameterNotImplemented = 624 => "command parameter not implemented",
        NotLoggedIn = 625 => "not logged in",
        NeedAccount = 626 => "need account for storing files",
        ActionNotTaken = 627 => "requested action not taken",
        PageTypeUnknown = 628 => "page type unknown",
        FileActionAborted = 629 => "requested file action aborted",
    }
    unknown => "FTP error code not in Quectel's documented table";
}

/// The outcome of an FTP `<err>` field: `0` is success, anything else an [`FtpError`].
pub const fn ftp_result(code: u16) -> Result<(), FtpError> {
    match code {
        0 => Ok(()),
        code => Err(FtpError::from_code(code)),
    }
}

code_enum! {
    /// Module file-system error (reference §5.4), reported as `+CME ERROR: 4xx` by the
    /// `AT+QF*` commands. Only the listed codes have variants.
    pub enum FileError {
        InvalidInput = 400 => "invalid input value",
        BeyondFileSize = 401 => "larger than file size",
        /// `AT+QFREAD` at the end of the file; not a real failure.
        ReadZeroBytes = 402 => "read zero bytes",
        DriveFull = 403 => "drive full",
        FileNotFound = 405 => "file not found",
        InvalidFileName = 406 => "invalid file name",
        /// `AT+QFUPL` to a name that exists; delete it first.
        FileAlreadyExists = 407 => "file already exists",
        WriteFailed = 409 => "write failed",
        OpenFailed = 410 => "open failed",
        ReadFailed = 411 => "read failed",
        TooManyOpenFiles = 413 => "max open files reached",
        ReadOnly = 414 => "file is read-only",
        InvalidDescriptor = 416 => "invalid file descriptor",
        ListFailed = 417 => "list failed",
        DeleteFailed = 418 => "delete failed",
        DiskInfoFailed = 419 => "get disk info failed",
        NoSpace = 420 => "no space",
        /// `AT+QFUPL` received fewer bytes than announced; the partial file was stored.
        Timeout = 421 => "time out",
        FileTooLarge = 423 => "file too large",
        InvalidParameter = 425 => "invalid parameter",
        AlreadyOpen = 426 => "file already opened",
    }
    unknown => "file error code not in Quectel's documented table";
}

code_enum! {
    /// TCP/IP error (reference §5.5), reported as `+CME ERROR: 5xx` or by
    /// `+QIGETERROR: <code>,<text>`.
    pub enum TcpipError {
        UnknownError = 550 => "unknown TCP/IP error",
        OperationBlocked = 551 => "operation blocked",
        InvalidParameters = 552 => "invalid parameters",
        OutOfMemory = 553 => "memory not enough",
        SocketCreateFailed = 554 => "create socket failed",
        NotSupported = 555 => "operation not supported",
        BindFailed = 556 => "socket bind failed",
        ListenFailed = 557 => "socket listen failed",
        WriteFailed = 558 => "socket write failed",
        ReadFailed = 559 => "socket read failed",
        AcceptFailed = 560 => "socket accept failed",
        PdpOpenFailed = 561 => "open PDP context failed",
        PdpCloseFailed = 562 => "close PDP context failed",
        SocketIdInUse = 563 => "socket identity already used",
        DnsBusy = 564 => "DNS busy",
        DnsParseFailed = 565 => "DNS parse failed",
        /// `AT+QSSLOPEN` also reports a TLS host-name mismatch with this code.
        ConnectFailed = 566 => "socket connect failed",
        SocketClosed = 567 => "socket closed",
        OperationBusy = 568 => "operation busy",
        OperationTimeout = 569 => "operation timeout",
        PdpBrokenDown = 570 => "PDP context broken down",
        SendCancelled = 571 => "cancel send",
        /// EG800K: `AT+QIACT` on a cid while the network had activated another one.
        NotAllowed = 572 => "operation not allowed",
        ApnNotConfigured = 573 => "APN not configured",
        PortBusy = 574 => "port busy",
    }
    unknown => "TCP/IP error code not in Quectel's documented table";
}

code_enum! {
    /// General equipment error (the 3GPP TS 27.007 `+CME ERROR` set, reference §5.6).
    ///
    /// The meanings are the verbose texts printed with `AT+CMEE=2`.
    pub enum EquipmentError {
        PhoneFailure = 0 => "phone failure",
        NoConnectionToPhone = 1 => "no connection to phone",
        AdaptorLinkReserved = 2 => "phone-adaptor link reserved",
        OperationNotAllowed = 3 => "operation not allowed",
        OperationNotSupported = 4 => "operation not supported",
        PhSimPinRequired = 5 => "PH-SIM PIN required",
        PhFsimPinRequired = 6 => "PH-FSIM PIN required",
        PhFsimPukRequired = 7 => "PH-FSIM PUK required",
        /// Also the answer to `AT+CPIN?` without a SIM.
        SimNotInserted = 10 => "SIM not inserted",
        SimPinRequired = 11 => "SIM PIN required",
        SimPukRequired = 12 => "SIM PUK required",
        SimFailure = 13 => "SIM failure",
        SimBusy = 14 => "SIM busy",
        SimWrong = 15 => "SIM wrong",
        IncorrectPassword = 16 => "incorrect password",
        SimPin2Required = 17 => "SIM PIN2 required",
        SimPuk2Required = 18 => "SIM PUK2 required",
        MemoryFull = 20 => "memory full",
        InvalidIndex = 21 => "invalid index",
        NotFound = 22 => "not found",
        MemoryFailure = 23 => "memory failure",
        TextTooLong = 24 => "text string too long",
        InvalidTextCharacters = 25 => "invalid characters in text string",
        DialStringTooLong = 26 => "dial string too long",
        InvalidDialCharacters = 27 => "invalid characters in dial string",
        NoNetworkService = 30 => "no network service",
        NetworkTimeout = 31 => "network timeout",
        EmergencyCallsOnly = 32 => "network not allowed - emergency calls only",
        NetworkPinRequired = 40 => "network personalization PIN required",
        NetworkPukRequired = 41 => "network personalization PUK required",
        NetworkSubsetPinRequired = 42 => "network subset personalization PIN required",
        NetworkSubsetPukRequired = 43 => "network subset personalization PUK required",
        ServiceProviderPinRequired = 44 => "service provider personalization PIN required",
        ServiceProviderPukRequired = 45 => "service provider personalization PUK required",
        CorporatePinRequired = 46 => "corporate personalization PIN required",
        CorporatePukRequired = 47 => "corporate personalization PUK required",
        AudioUnknown = 901 => "audio unknown error",
        AudioInvalidParameters = 902 => "audio invalid parameters",
        AudioNotSupported = 903 => "audio operation not supported",
        AudioDeviceBusy = 904 => "audio device busy",
    }
    unknown => "equipment error code not in the 3GPP or Quectel table";
}

code_enum! {
    /// SMS error from `+CMS ERROR: <n>` (3GPP TS 27.005, reference §5.6).
    pub enum CmsError {
        MeFailure = 300 => "ME failure",
        SmsServiceReserved = 301 => "SMS service of ME reserved",
        OperationNotAllowed = 302 => "operation not allowed",
        OperationNotSupported = 303 => "operation not supported",
        InvalidPduParameter = 304 => "invalid PDU mode parameter",
        InvalidTextParameter = 305 => "invalid text mode parameter",
        SimNotInserted = 310 => "SIM not inserted",
        SimPinRequired = 311 => "SIM PIN required",
        PhSimPinRequired = 312 => "PH-SIM PIN required",
        SimFailure = 313 => "SIM failure",
        SimBusy = 314 => "SIM busy",
        SimWrong = 315 => "SIM wrong",
        SimPukRequired = 316 => "SIM PUK required",
        SimPin2Required = 317 => "SIM PIN2 required",
        SimPuk2Required = 318 => "SIM PUK2 required",
        MemoryFailure = 320 => "memory failure",
        InvalidMemoryIndex = 321 => "invalid memory index",
        MemoryFull = 322 => "memory full",
        SmscAddressUnknown = 330 => "SMSC address unknown",
        NoNetworkService = 331 => "no network service",
        NetworkTimeout = 332 => "network timeout",
        NoCnmaExpected = 340 => "no +CNMA acknowledgement expected",
        UnknownError = 500 => "unknown SMS error",
        MessageBlocked = 510 => "message blocked",
    }
    unknown => "SMS error code not in the 3GPP or Quectel table";
}

code_enum! {
    /// FOTA upgrade end code of Qualcomm modules (EP06/EG06/EM06 DFOTA guide, reference §5.3),
    /// from `+QIND: "FOTA","END",<err>`. `0` (success) has no variant.
    pub enum QualcommFotaError {
        /// Only in a DFOTA troubleshooting note for modules with a backup partition.
        BackupFailed = 1 => "backup partition failed, usually for lack of space (troubleshooting note)",
        /// Only in a DFOTA troubleshooting note.
        DecompressFailed = 501 => "cannot decompress the package or not enough space at start (troubleshooting note)",
        UnexpectedExit = 502 => "upgrade process exited on an unexpected error",
        PackageError = 504 => "problem with the package file",
        PackageFileError = 505 => "problem with the package file",
        /// A delta package built for a different source version.
        WrongPackage = 510 => "patch does not match the source firmware (wrong package)",
        NoSpace = 511 => "not enough file-system space",
        Failed520 = 520 => "upgrade failed",
        Failed521 = 521 => "upgrade failed",
        Failed522 = 522 => "upgrade failed",
        Failed523 = 523 => "upgrade failed",
        Failed524 = 524 => "upgrade failed",
        Failed525 = 525 => "upgrade failed",
        Failed526 = 526 => "upgrade failed",
        Failed527 = 527 => "upgrade failed",
        Failed528 = 528 => "upgrade failed",
        Failed529 = 529 => "upgrade failed",
        Failed530 = 530 => "upgrade failed",
        Failed540 = 540 => "upgrade failed",
        Failed541 = 541 => "upgrade failed",
        Failed542 = 542 => "upgrade failed",
        Failed543 = 543 => "upgrade failed",
        Failed544 = 544 => "upgrade failed",
        Failed545 = 545 => "upgrade failed",
        Failed546 = 546 => "upgrade failed",
    }
    unknown => "code not in Quectel's Qualcomm FOTA table; the upgrade failed";
}

code_enum! {
    /// FOTA upgrade end code of ASR "LTE Standard(A)" modules (EC200T/A/N, EC600N/M,
    /// EC800K/M, EG800K, EG915N; reference §5.3), from `+QIND: "FOTA","END",<err>`. `0`
    /// (success) has no variant.
    pub enum AsrFotaError {
        UpgradeFailed = 504 => "DFOTA upgrade failed",
        VerificationError = 505 => "package verification error",
        Md5Mismatch = 506 => "firmware MD5 check error",
        /// The delta package was built for another firmware version.
        VersionMismatch = 507 => "package version mismatch",
        ProjectNameMismatch = 552 => "package project name mismatch",
        BaselineNameMismatch = 553 => "package baseline name mismatch",
    }
    unknown => "code not in Quectel's ASR FOTA table; the upgrade failed";
}

code_enum! {
    /// Result of the host-file download stage, `+QIND: "FOTA","FILEEND",<err>` (ASR family,
    /// reference §5.3). `0` (success) has no variant.
    pub enum FileEndError {
        DownloadError = 500 => "file download error",
    }
    unknown => "code not in Quectel's FOTA FILEEND table; the transfer failed";
}

code_enum! {
    /// An EMM cause (3GPP TS 24.301 §9.9.3.9 and Annex A): why the network rejected an LTE
    /// attach or tracking-area update, as `AT+CEREG=3` reports it in `<reject_cause>`
    /// ([`RejectCause`](super::general::RejectCause)). Not a Quectel table: every LTE module
    /// reports the same causes.
    pub enum EmmCause {
        ImsiUnknownInHss = 2 => "IMSI unknown in HSS (the SIM is not provisioned)",
        IllegalUe = 3 => "illegal UE (the SIM failed authentication or is barred)",
        ImeiNotAccepted = 5 => "IMEI not accepted",
        IllegalMe = 6 => "illegal ME (the device is barred)",
        EpsNotAllowed = 7 => "EPS services not allowed (no LTE data on this subscription)",
        EpsAndNonEpsNotAllowed = 8 => "EPS and non-EPS services not allowed",
        IdentityNotDerived = 9 => "UE identity cannot be derived by the network",
        ImplicitlyDetached = 10 => "implicitly detached",
        PlmnNotAllowed = 11 => "PLMN not allowed (this operator does not accept the SIM)",
        TrackingAreaNotAllowed = 12 => "tracking area not allowed",
        RoamingNotAllowedInArea = 13 => "roaming not allowed in this tracking area",
        EpsNotAllowedInPlmn = 14 => "EPS services not allowed in this PLMN",
        NoSuitableCells = 15 => "no suitable cells in tracking area",
        MscNotReachable = 16 => "MSC temporarily not reachable",
        NetworkFailure = 17 => "network failure",
        CsDomainNotAvailable = 18 => "CS domain not available",
        EsmFailure = 19 => "ESM failure (often a wrong or refused APN for the default bearer)",
        MacFailure = 20 => "MAC failure (authentication)",
        SynchFailure = 21 => "synch failure (authentication)",
        Congestion = 22 => "congestion",
        SecurityCapabilitiesMismatch = 23 => "UE security capabilities mismatch",
        SecurityModeRejected = 24 => "security mode rejected, unspecified",
        NotAuthorizedForCsg = 25 => "not authorized for this CSG",
        NonEpsAuthenticationUnacceptable = 26 => "non-EPS authentication unacceptable",
        RedirectionTo5gcn = 31 => "redirection to 5GCN required",
        ServiceOptionNotAuthorized = 35 => "requested service option not authorized in this PLMN",
        CsServiceNotAvailable = 39 => "CS service temporarily not available",
        NoEpsBearerContext = 40 => "no EPS bearer context activated",
        SevereNetworkFailure = 42 => "severe network failure",
        PlmnNotAllowedAtLocation = 78 => "PLMN not allowed to operate at the present UE location",
        SemanticallyIncorrect = 95 => "semantically incorrect message",
        InvalidMandatoryInformation = 96 => "invalid mandatory information",
        MessageTypeNonExistent = 97 => "message type non-existent or not implemented",
        MessageTypeNotCompatible = 98 => "message type not compatible with the protocol state",
        InformationElementNonExistent = 99 => "information element non-existent or not implemented",
        ConditionalIeError = 100 => "conditional IE error",
        MessageNotCompatible = 101 => "message not compatible with the protocol state",
        ProtocolError = 111 => "protocol error, unspecified",
    }
    unknown => "EMM cause not in 3GPP TS 24.301 Annex A";
}

/// The `<err>` of `+QIND: "FOTA","END",<err>`: `0` means the upgrade succeeded, anything else
/// that it failed. The meaning of a failure code depends on the chipset family (reference
/// §5.3).
///
/// ```
/// use cellular_ota::quectel::{ChipFamily, error::FotaEndCode};
/// assert_eq!(FotaEndCode(0).meaning(None), "upgrade succeeded");
/// assert_eq!(FotaEndCode(506).meaning(Some(ChipFamily::Asr)), "firmware MD5 check error");
/// assert_eq!(FotaEndCode(506).meaning(None), "ASR: firmware MD5 check error");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FotaEndCode(pub u16);

impl FotaEndCode {
    /// The raw code.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// True for `0`, the only code that means the new firmware is installed.
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }

    /// The code in the Qualcomm table; `None` for success.
    pub const fn qualcomm(self) -> Option<QualcommFotaError> {
        match self.0 {
            0 => None,
            code => Some(QualcommFotaError::from_code(code)),
        }
    }

    /// The code in the ASR table; `None` for success.
    pub const fn asr(self) -> Option<AsrFotaError> {
        match self.0 {
            0 => None,
            code => Some(AsrFotaError::from_code(code)),
        }
    }

    /// One line of plain English; never empty.
    ///
    /// With a family, the code is looked up in that family's table. With `None` (family not
    /// known), the meaning comes from whichever table lists the code, prefixed with the
    /// family (`"ASR: firmware MD5 check error"`); codes both tables list (504, 505) get both
    /// meanings.
    pub const fn meaning(self, family: Option<ChipFamily>) -> &'static str {
        if self.0 == 0 {
            return "upgrade succeeded";
        }
        match family {
            Some(ChipFamily::Qualcomm) => QualcommFotaError::from_code(self.0).meaning(),
            Some(ChipFamily::Asr) => AsrFotaError::from_code(self.0).meaning(),
            Some(ChipFamily::Unisoc) => {
                "no code table is published for Unisoc modules (EC200U); non-zero means the \
                 upgrade failed"
            }
            None => any_family_meaning(self.0),
        }
    }
}

/// The meaning of a non-zero FOTA end code whose family is not known.
const fn any_family_meaning(code: u16) -> &'static str {
    use AsrFotaError as A;
    use QualcommFotaError as Q;
    match (
        QualcommFotaError::from_code(code),
        AsrFotaError::from_code(code),
    ) {
        (Q::PackageError, A::UpgradeFailed) => {
            "Qualcomm: problem with the package file / ASR: DFOTA upgrade failed"
        }
        (Q::PackageFileError, A::VerificationError) => {
            "Qualcomm: problem with the package file / ASR: package verification error"
        }
        (Q::Unknown(_), A::Unknown(_)) => {
            "not a documented FOTA end code; non-zero means the upgrade failed"
        }
        (Q::Unknown(_), asr) => match asr {
            A::Md5Mismatch => "ASR: firmware MD5 check error",
            A::VersionMismatch => "ASR: package version mismatch",
            A::ProjectNameMismatch => "ASR: package project name mismatch",
            A::BaselineNameMismatch => "ASR: package baseline name mismatch",
            // 504 and 505 are in both tables and handled above.
            _ => "ASR: upgrade failed",
        },
        (qualcomm, _) => match qualcomm {
            Q::BackupFailed => {
                "Qualcomm: backup partition failed, usually for lack of space (troubleshooting \
                 note)"
            }
            Q::DecompressFailed => {
                "Qualcomm: cannot decompress the package or not enough space at start \
                 (troubleshooting note)"
            }
            Q::UnexpectedExit => "Qualcomm: upgrade process exited on an unexpected error",
            Q::WrongPackage => "Qualcomm: patch does not match the source firmware (wrong package)",
            Q::NoSpace => "Qualcomm: not enough file-system space",
            _ => "Qualcomm: upgrade failed",
        },
    }
}

impl core::fmt::Display for FotaEndCode {
    /// `<code>: <meaning>`, with the meaning for an unknown family.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.0, self.meaning(None))
    }
}

impl From<u16> for FotaEndCode {
    fn from(code: u16) -> Self {
        FotaEndCode(code)
    }
}

/// The decoded argument of `+CME ERROR: <n>`. Quectel puts its module-specific codes into the
/// same result, so the table is chosen by the code's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CmeError {
    /// 0–99 and 900–999: the 3GPP set.
    Equipment(EquipmentError),
    /// 400–499: module file system.
    File(FileError),
    /// 550–599: TCP/IP stack.
    Tcpip(TcpipError),
    /// 600–699: FTP(S).
    Ftp(FtpError),
    /// 700–799: HTTP(S).
    Http(HttpError),
    /// Any other code.
    Unknown(u16),
}

/// Verbose (`AT+CMEE=2`) texts that are not the `meaning` of a variant.
const TEXT_ALIASES: &[(&[u8], u16)] = &[
    (b"file already exist", 407),
    (b"file not exist", 405),
    (b"phone adaptor link reserved", 2),
    (b"emergency calls only", 32),
    (b"network personalisation PIN required", 40),
    (b"network personalisation PUK required", 41),
    (b"network subset personalisation PIN required", 42),
    (b"network subset personalisation PUK required", 43),
    (b"service provider personalisation PIN required", 44),
    (b"service provider personalisation PUK required", 45),
    (b"corporate personalisation PIN required", 46),
    (b"corporate personalisation PUK required", 47),
];

impl CmeError {
    /// The error for `code`, with the table chosen by range: 0–99 and 900–999 equipment,
    /// 400–499 file, 550–599 TCP/IP, 600–699 FTP, 700–799 HTTP, anything else
    /// [`CmeError::Unknown`].
    pub const fn from_code(code: u16) -> Self {
        match code {
            0..=99 | 900..=999 => CmeError::Equipment(EquipmentError::from_code(code)),
            400..=499 => CmeError::File(FileError::from_code(code)),
            550..=599 => CmeError::Tcpip(TcpipError::from_code(code)),
            600..=699 => CmeError::Ftp(FtpError::from_code(code)),
            700..=799 => CmeError::Http(HttpError::from_code(code)),
            other => CmeError::Unknown(other),
        }
    }

    /// The error for a verbose `+CME ERROR: <text>` (`AT+CMEE=2`); `None` if the text is not
    /// known.
    ///
    /// Compared ASCII case-insensitively after trimming whitespace. Known texts are the
    /// 3GPP TS 27.007 texts of every [`EquipmentError`] (British spellings too), the meaning
    /// of every [`FileError`], and Quectel's variants seen in the wild (`file already exist`,
    /// `file not exist`). TCP/IP, FTP and HTTP texts are not matched: their wording is not
    /// documented and overlaps between tables (EG800K printed those codes numerically even
    /// with `AT+CMEE=2`).
    pub fn from_text(text: &[u8]) -> Option<CmeError> {
        let text = text.trim_ascii();
        let same = |known: &[u8]| known.eq_ignore_ascii_case(text);
        if let Some(&(_, code)) = TEXT_ALIASES.iter().find(|(alias, _)| same(alias)) {
            return Some(CmeError::from_code(code));
        }
        if let Some(&e) = EquipmentError::KNOWN
            .iter()
            .find(|e| same(e.meaning().as_bytes()))
        {
            return Some(CmeError::Equipment(e));
        }
        FileError::KNOWN
            .iter()
            .find(|e| same(e.meaning().as_bytes()))
            .map(|&e| CmeError::File(e))
    }

    /// The error carried by an [`ErrorCode`] of [`crate::at::Final::CmeError`]: numeric codes
    /// through [`CmeError::from_code`], texts through [`CmeError::from_text`] (`None` if not
    /// known).
    pub fn from_error_code(code: ErrorCode<'_>) -> Option<CmeError> {
        match code {
            ErrorCode::Numeric(n) => Some(CmeError::from_code(n)),
            ErrorCode::Text(text) => CmeError::from_text(text),
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        match self {
            CmeError::Equipment(e) => e.code(),
            CmeError::File(e) => e.code(),
            CmeError::Tcpip(e) => e.code(),
            CmeError::Ftp(e) => e.code(),
            CmeError::Http(e) => e.code(),
            CmeError::Unknown(code) => code,
        }
    }

    /// One line of plain English; never empty.
    pub const fn meaning(self) -> &'static str {
        match self {
            CmeError::Equipment(e) => e.meaning(),
            CmeError::File(e) => e.meaning(),
            CmeError::Tcpip(e) => e.meaning(),
            CmeError::Ftp(e) => e.meaning(),
            CmeError::Http(e) => e.meaning(),
            CmeError::Unknown(_) => "code outside every documented +CME ERROR range",
        }
    }
}

impl core::fmt::Display for CmeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.code(), self.meaning())
    }
}

impl core::error::Error for CmeError {}

impl From<u16> for CmeError {
    fn from(code: u16) -> Self {
        CmeError::from_code(code)
    }
}

impl From<EquipmentError> for CmeError {
    fn from(e: EquipmentError) -> Self {
        CmeError::Equipment(e)
    }
}

impl From<FileError> for CmeError {
    fn from(e: FileError) -> Self {
        CmeError::File(e)
    }
}

impl From<TcpipError> for CmeError {
    fn from(e: TcpipError) -> Self {
        CmeError::Tcpip(e)
    }
}

impl From<FtpError> for CmeError {
    fn from(e: FtpError) -> Self {
        CmeError::Ftp(e)
    }
}

impl From<HttpError> for CmeError {
    fn from(e: HttpError) -> Self {
        CmeError::Http(e)
    }
}

/// The best one-line meaning of a numeric code from a `+CME ERROR:`, an HTTP/FTP result
/// (`+QHTTPGET: <err>`) or a FOTA URC, for logs. Never empty.
///
/// Uses the [`CmeError::from_code`] ranges; `0` is described for both contexts (success in
/// results, phone failure in `+CME ERROR`); 500–549 outside those ranges are looked up as
/// FOTA codes (500 as the `FILEEND` error, the rest as [`FotaEndCode`] of an unknown family).
/// Where the family is known, [`FotaEndCode::meaning`] is more precise for `END` codes.
pub fn describe(code: u16) -> &'static str {
    if code == 0 {
        return "success (in HTTP, FTP and FOTA results); phone failure (in +CME ERROR)";
    }
    match CmeError::from_code(code) {
        CmeError::Unknown(500) => FileEndError::DownloadError.meaning(),
        CmeError::Unknown(c @ 501..=549) => FotaEndCode(c).meaning(None),
        CmeError::Unknown(_) => "code not in any of Quectel's documented tables",
        e => e.meaning(),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::ToString;

    /// Checks a table against an explicit list of codes: round trip, no `Unknown`, a
    /// non-empty meaning, `Display`, and that `KNOWN` holds exactly these codes.
    macro_rules! check_table {
        ($ty:ident, [$($code:literal),+ $(,)?]) => {{
            let codes: &[u16] = &[$($code),+];
            assert_eq!($ty::KNOWN.len(), codes.len(), "{}", stringify!($ty));
            for (&code, known) in codes.iter().zip($ty::KNOWN) {
                let e = $ty::from_code(code);
                assert_eq!(e.code(), code);
                assert_eq!(*known, e);
                assert!(!matches!(e, $ty::Unknown(_)), "{} {}", stringify!($ty), code);
                assert!(!e.meaning().is_empty());
                assert_eq!(e.to_string(), format!("{}: {}", code, e.meaning()));
            }
        }};
    }

    #[test]
    fn http_table() {
        check_table!(
            HttpError,
            [
                701, 702, 703, 704, 705, 706, 707, 708, 709, 710, 711, 712, 713, 714, 715, 716,
                717, 718, 719, 720, 721, 722, 723, 724, 725, 726, 727, 728, 729, 730,
            ]
        );
        assert_eq!(HttpError::from_code(0), HttpError::Unknown(0));
        assert_eq!(http_result(0), Ok(()));
        assert_eq!(http_result(716), Err(HttpError::SocketConnectError));
        assert_eq!(http_result(608), Err(HttpError::Unknown(608)));
        assert_eq!(HttpError::Timeout.to_string(), "702: timeout");
    }

    #[test]
    fn emm_table() {
        check_table!(
            EmmCause,
            [
                2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                25, 26, 31, 35, 39, 40, 42, 78, 95, 96, 97, 98, 99, 100, 101, 111,
            ]
        );
        assert_eq!(EmmCause::from_code(4), EmmCause::Unknown(4));
        assert_eq!(EmmCause::from_code(15), EmmCause::NoSuitableCells);
    }

    #[test]
    fn ftp_table() {
        check_table!(
            FtpError,
            [
                601, 602, 603, 604, 605, 606, 607, 608, 609, 610, 611, 612, 613, 614, 615, 616,
                617, 618, 619, 620, 621, 622, 623, 624, 625, 626, 627, 628, 629,
            ]
        );
        assert_eq!(ftp_result(0), Ok(()));
        assert_eq!(ftp_result(609), Err(FtpError::Timeout));
        assert_eq!(ftp_result(630), Err(FtpError::Unknown(630)));
    }

    #[test]
    fn file_table() {
        check_table!(
            FileError,
            [
                400, 401, 402, 403, 405, 406, 407, 409, 410, 411, 413, 414, 416, 417, 418, 419,
                420, 421, 423, 425, 426,
            ]
        );
        for gap in [404, 408, 412, 415, 422, 424, 427] {
            assert_eq!(FileError::from_code(gap), FileError::Unknown(gap));
        }
    }

    #[test]
    fn tcpip_table() {
        check_table!(
            TcpipError,
            [
                550, 551, 552, 553, 554, 555, 556, 557, 558, 559, 560, 561, 562, 563, 564, 565,
                566, 567, 568, 569, 570, 571, 572, 573, 574,
            ]
        );
    }

    #[test]
    fn equipment_table() {
        check_table!(
            EquipmentError,
            [
                0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25,
                26, 27, 30, 31, 32, 40, 41, 42, 43, 44, 45, 46, 47, 901, 902, 903, 904,
            ]
        );
    }

    #[test]
    fn cms_table() {
        check_table!(
            CmsError,
            [
                300, 301, 302, 303, 304, 305, 310, 311, 312, 313, 314, 315, 316, 317, 318, 320,
                321, 322, 330, 331, 332, 340, 500, 510,
            ]
        );
    }

    #[test]
    fn fota_tables() {
        check_table!(
            QualcommFotaError,
            [
                1, 501, 502, 504, 505, 510, 511, 520, 521, 522, 523, 524, 525, 526, 527, 528, 529,
                530, 540, 541, 542, 543, 544, 545, 546,
            ]
        );
        check_table!(AsrFotaError, [504, 505, 506, 507, 552, 553]);
        check_table!(FileEndError, [500]);
        assert_eq!(
            QualcommFotaError::from_code(0),
            QualcommFotaError::Unknown(0)
        );
        assert_eq!(
            QualcommFotaError::from_code(531),
            QualcommFotaError::Unknown(531)
        );
    }

    #[test]
    fn unknown_round_trips() {
        for code in [8u16, 99, 404, 575, 630, 700, 731, 999, 1000, u16::MAX] {
            assert_eq!(HttpError::from_code(code).code(), code);
            assert_eq!(CmeError::from_code(code).code(), code);
            assert!(!CmeError::from_code(code).meaning().is_empty());
        }
        assert_eq!(HttpError::from_code(731), HttpError::Unknown(731));
        assert_eq!(
            HttpError::Unknown(731)
                .to_string()
                .split_once(": ")
                .unwrap()
                .0,
            "731"
        );
        assert!(!HttpError::Unknown(731).meaning().is_empty());
        assert_eq!(EquipmentError::from_code(905), EquipmentError::Unknown(905));
    }

    #[test]
    fn cme_ranges() {
        use CmeError as C;
        assert_eq!(
            C::from_code(3),
            C::Equipment(EquipmentError::OperationNotAllowed)
        );
        assert_eq!(C::from_code(50), C::Equipment(EquipmentError::Unknown(50)));
        assert_eq!(
            C::from_code(903),
            C::Equipment(EquipmentError::AudioNotSupported)
        );
        assert_eq!(C::from_code(402), C::File(FileError::ReadZeroBytes));
        assert_eq!(C::from_code(572), C::Tcpip(TcpipError::NotAllowed));
        assert_eq!(C::from_code(599), C::Tcpip(TcpipError::Unknown(599)));
        assert_eq!(C::from_code(603), C::Ftp(FtpError::Busy));
        assert_eq!(C::from_code(716), C::Http(HttpError::SocketConnectError));
        for code in [100, 300, 399, 500, 549, 800, 899, 1000] {
            assert_eq!(C::from_code(code), C::Unknown(code));
        }
        assert_eq!(C::from_code(711).to_string(), "711: URL error");
        assert_eq!(C::from(HttpError::Busy), C::Http(HttpError::Busy));
    }

    #[test]
    fn cme_from_text() {
        let f = |t: &[u8]| CmeError::from_text(t).map(CmeError::code);
        assert_eq!(f(b"SIM not inserted"), Some(10));
        assert_eq!(f(b"  sim NOT inserted \t"), Some(10));
        assert_eq!(f(b"operation not allowed"), Some(3));
        assert_eq!(f(b"incorrect password"), Some(16));
        assert_eq!(f(b"SIM PIN required"), Some(11));
        assert_eq!(f(b"SIM PUK2 required"), Some(18));
        assert_eq!(f(b"network personalisation PIN required"), Some(40));
        assert_eq!(f(b"phone adaptor link reserved"), Some(2));
        assert_eq!(f(b"file already exist"), Some(407));
        assert_eq!(f(b"file already exists"), Some(407));
        assert_eq!(f(b"FILE NOT FOUND"), Some(405));
        assert_eq!(f(b"file not exist"), Some(405));
        assert_eq!(f(b"time out"), Some(421));
        assert_eq!(f(b"not found"), Some(22));
        assert_eq!(f(b""), None);
        assert_eq!(f(b"something else"), None);
        assert_eq!(f(b"\xff\xfe"), None);
        // Every meaning in the two searched tables finds its own code (so none is shadowed).
        for e in EquipmentError::KNOWN {
            assert_eq!(f(e.meaning().as_bytes()), Some(e.code()), "{e}");
            let upper = e.meaning().to_ascii_uppercase();
            assert_eq!(f(upper.as_bytes()), Some(e.code()), "{e}");
        }
        for e in FileError::KNOWN {
            assert_eq!(f(e.meaning().as_bytes()), Some(e.code()), "{e}");
        }
        assert_eq!(
            CmeError::from_error_code(ErrorCode::Text(b"file already exist")),
            Some(CmeError::File(FileError::FileAlreadyExists))
        );
        assert_eq!(
            CmeError::from_error_code(ErrorCode::Numeric(421)),
            Some(CmeError::File(FileError::Timeout))
        );
        assert_eq!(CmeError::from_error_code(ErrorCode::Text(b"huh")), None);
    }

    #[test]
    fn fota_end_per_family() {
        use ChipFamily::*;
        for family in [None, Some(Qualcomm), Some(Asr), Some(Unisoc)] {
            assert_eq!(FotaEndCode(0).meaning(family), "upgrade succeeded");
            for code in [
                1u16,
                2,
                500,
                501,
                502,
                504,
                505,
                506,
                510,
                531,
                553,
                999,
                u16::MAX,
            ] {
                assert!(!FotaEndCode(code).meaning(family).is_empty());
            }
        }
        assert_eq!(
            FotaEndCode(510).meaning(Some(Qualcomm)),
            QualcommFotaError::WrongPackage.meaning()
        );
        assert_eq!(FotaEndCode(504).meaning(Some(Asr)), "DFOTA upgrade failed");
        assert_eq!(
            FotaEndCode(504).meaning(Some(Qualcomm)),
            "problem with the package file"
        );
        assert!(FotaEndCode(506).meaning(Some(Unisoc)).contains("Unisoc"));
        assert_eq!(
            FotaEndCode(506).meaning(Some(Qualcomm)),
            QualcommFotaError::Unknown(506).meaning()
        );
        assert!(FotaEndCode(0).is_success());
        assert_eq!(FotaEndCode(0).qualcomm(), None);
        assert_eq!(
            FotaEndCode(510).qualcomm(),
            Some(QualcommFotaError::WrongPackage)
        );
        assert_eq!(
            FotaEndCode(552).asr(),
            Some(AsrFotaError::ProjectNameMismatch)
        );
        assert_eq!(
            FotaEndCode(506).to_string(),
            "506: ASR: firmware MD5 check error"
        );
    }

    #[test]
    fn fota_end_without_family() {
        let m = |c| FotaEndCode(c).meaning(None);
        assert_eq!(
            m(504),
            "Qualcomm: problem with the package file / ASR: DFOTA upgrade failed"
        );
        assert_eq!(
            m(505),
            "Qualcomm: problem with the package file / ASR: package verification error"
        );
        for e in QualcommFotaError::KNOWN {
            if AsrFotaError::from_code(e.code()) == AsrFotaError::Unknown(e.code()) {
                assert_eq!(m(e.code()), format!("Qualcomm: {}", e.meaning()));
            }
        }
        for e in AsrFotaError::KNOWN {
            let q = QualcommFotaError::from_code(e.code());
            if q == QualcommFotaError::Unknown(e.code()) {
                assert_eq!(m(e.code()), format!("ASR: {}", e.meaning()));
            } else {
                assert_eq!(
                    m(e.code()),
                    format!("Qualcomm: {} / ASR: {}", q.meaning(), e.meaning())
                );
            }
        }
        assert!(m(531).starts_with("not a documented"));
    }

    #[test]
    fn describe_any_code() {
        assert!(describe(0).contains("success"));
        assert_eq!(describe(714), "DNS error");
        assert_eq!(describe(608), "socket closed by peer");
        assert_eq!(describe(407), "file already exists");
        assert_eq!(describe(566), "socket connect failed");
        assert_eq!(describe(500), "file download error");
        assert_eq!(describe(506), "ASR: firmware MD5 check error");
        assert_eq!(
            describe(502),
            "Qualcomm: upgrade process exited on an unexpected error"
        );
        for code in 0..=u16::MAX {
            assert!(!describe(code).is_empty());
            assert_eq!(CmeError::from_code(code).code(), code);
        }
    }

    proptest::proptest! {
        #[test]
        fn every_code_round_trips(code in proptest::num::u16::ANY) {
            proptest::prop_assert_eq!(HttpError::from_code(code).code(), code);
            proptest::prop_assert_eq!(FtpError::from_code(code).code(), code);
            proptest::prop_assert_eq!(FileError::from_code(code).code(), code);
            proptest::prop_assert_eq!(TcpipError::from_code(code).code(), code);
            proptest::prop_assert_eq!(EquipmentError::from_code(code).code(), code);
            proptest::prop_assert_eq!(CmsError::from_code(code).code(), code);
            proptest::prop_assert_eq!(QualcommFotaError::from_code(code).code(), code);
            proptest::prop_assert_eq!(AsrFotaError::from_code(code).code(), code);
            proptest::prop_assert_eq!(FileEndError::from_code(code).code(), code);
            proptest::prop_assert_eq!(CmeError::from_code(code).code(), code);
        }

        #[test]
        fn from_text_never_panics(text in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = CmeError::from_text(&text);
        }
    }
}
