//! sedx's tests, one binary (as ripgrep and cargo keep theirs): each module is a
//! specification of one part, against real parts (an OpenSSH sshd, libxml2,
//! SQLite files, folders, the sedx command); `common` holds the shared helpers.

mod common;

mod architecture;
mod browser;
mod clean;
mod cli;
mod console;
mod crash;
mod deploy;
mod domain;
mod encodings;
mod exchange;
mod faults;
mod fuzz_corpus;
mod gen;
mod hostile;
mod hostile_corpus;
mod hub;
mod join;
mod memory;
mod migrations;
mod national;
mod samples;
mod security;
mod service;
mod standby;
mod tools;
mod transfer;
