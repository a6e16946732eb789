//! Sandbox orchestrator: Tier1 Docker (runc) and Tier2 gVisor (runsc), risk assessment, command tools
