//! OWNER: see ARCHITECTURE.md. Placeholder until its helper lands it.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("not implemented yet")
}
