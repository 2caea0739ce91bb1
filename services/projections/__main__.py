import uvicorn

from services.projections.bootstrap import build
from services.projections.settings import ProjectionsSettings
from services.runtime.service import configure_logging


def main() -> None:
    configure_logging("projections")
    settings = ProjectionsSettings()
    uvicorn.run(build(settings), host=settings.projections_host, port=settings.projections_port, access_log=False)


if __name__ == "__main__":
    main()
