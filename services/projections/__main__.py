import uvicorn

from services.projections.bootstrap import build
from services.projections.settings import ProjectionsSettings
from services.runtime.json_logs import configure_logging


def main() -> None:
    configure_logging("projections")
    settings = ProjectionsSettings()
    uvicorn.run(
        build(settings),
        host=settings.projections_host,
        port=settings.projections_port,
        access_log=False,
        log_config=None,  # uvicorn logs through the JSON handler configure_logging installed
        # open workspace event streams must not hold a stopping service up for long
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
