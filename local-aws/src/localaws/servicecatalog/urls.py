"""moto's Service Catalog URLs, with the service's own path served by our response class.

The App Registry paths that share moto's servicecatalog URL module stay as moto has them.
"""

from moto.servicecatalog.urls import url_bases
from moto.servicecatalog.urls import url_paths as moto_url_paths

from .responses import LocalServiceCatalogResponse

__all__ = ["url_bases", "url_paths"]

url_paths = {**moto_url_paths, "{0}/$": LocalServiceCatalogResponse.dispatch}
