"""The interactive side: one user's workspace (session, results, folder, background jobs), where its heavy
steps run (this process or ZeroGPU), what its visitor may see of the server, and reclaiming abandoned state."""
