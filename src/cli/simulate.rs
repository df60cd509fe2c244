//! `mia simulate` (wired once the simulator lands).

use super::Status;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<Status> {
    Ok(Status::Ok)
}
