from cgx.distributed import WorldInfo, world_info_from_env


def test_torchrun_environment():
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}
    assert world_info_from_env(env) == WorldInfo(rank=3, local_rank=1, world_size=4)


def test_slurm_fallback_without_torchrun():
    env = {"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8"}
    info = world_info_from_env(env)
    assert info == WorldInfo(rank=5, local_rank=1, world_size=8) and info.distributed and not info.is_main


def test_single_process_by_default():
    assert world_info_from_env({}) == WorldInfo(0, 0, 1)
    assert world_info_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == WorldInfo(0, 0, 1)
