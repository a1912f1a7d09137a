//! File descriptors passed between processes, and terminal sizes.

use crate::{Result, SysError};
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

/// Receive one file descriptor sent with `SCM_RIGHTS` on `sock` (a runtime's console socket sends the pty
/// master this way).
pub fn recv_fd(sock: &impl AsFd) -> Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut byte)];
    rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| SysError::io("recvmsg", "console socket", e.into()))?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(SysError::io(
        "recvmsg",
        "console socket",
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no file descriptor was sent",
        ),
    ))
}

/// Set the window size of a terminal (the pty master).
pub fn set_winsize(tty: &impl AsFd, rows: u16, cols: u16) -> Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(tty, ws).map_err(|e| SysError::io("resize", "terminal", e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_crosses_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "payload").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let fds = [f.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(
            &a,
            &[std::io::IoSlice::new(b"x")],
            &mut control,
            rustix::net::SendFlags::empty(),
        )
        .unwrap();
        let got = recv_fd(&b).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(got), &mut s).unwrap();
        assert_eq!(s, "payload");
        // A message without a descriptor is an error, not a panic or a bogus fd.
        let (c, e) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut &c, b"x").unwrap();
        assert!(recv_fd(&e).is_err());
    }

    #[test]
    fn resizing_a_non_terminal_fails() {
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(set_winsize(&f, 24, 80).is_err());
    }
}
