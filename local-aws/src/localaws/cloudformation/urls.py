"""moto's CloudFormation URLs, served by our response class (moto finds this module next to
`models`). moto's cfnresponse route is dropped: custom resources answer on our HTTPS listener."""

from moto.cloudformation.urls import url_bases

from .responses import LocalCloudFormationResponse

__all__ = ["url_bases", "url_paths"]

url_paths = {"{0}/$": LocalCloudFormationResponse.dispatch}
