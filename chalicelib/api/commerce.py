"""The catalogue and the profiles' product lists (SPEC §6.1, §6.2)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.adapters.clock import now
from chalicelib.bootstrap import services
from chalicelib.runtime import commerce
from chalicelib.runtime.storage import StoredProduct
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.durations import format_datetime

from .errors import BadRequest, NotFoundError
from .http import body, json_document, routes
from .models import ImportedProduct, ListIn, ProductIn

blueprint = Blueprint(__name__)
route = routes(blueprint)

MAX_IMPORT = 1000


def present(product: StoredProduct) -> dict[str, Any]:
    document = product.document
    return {
        "product_id": product.product_id,
        "price": document.get("price"),
        "available": document.get("available"),
        "fields": document.get("fields") or {},
        "regions": {
            zone: {
                "price": region.get("price"),
                "available": region.get("available"),
                "fields": region.get("fields") or {},
            }
            for zone, region in (document.get("regions") or {}).items()
        },
        "updated_at": format_datetime(product.updated_at),
    }


@route("/products/{product_id}", methods=["PUT"])
def put_product(product_id: str) -> dict[str, Any]:
    """Merge the keys given into the product (`null` clears one)."""
    given = body(blueprint.current_request, ProductIn).given()
    return present(commerce.put_product(UnitOfWork(), product_id, given, now()))


@route("/products/{product_id}", methods=["GET"])
def read_product(product_id: str) -> dict[str, Any]:
    product = services().storage.product(product_id)
    if product is None:
        raise NotFoundError(f"no product {product_id!r}")
    return present(product)


@route("/products/import", methods=["POST"])
def import_products() -> Response:
    """Up to 1,000 products; each one that is not valid is listed in `rejected`."""
    document = json_document(blueprint.current_request)
    if not isinstance(document, dict) or not isinstance(document.get("products"), list):
        raise BadRequest('$.products: a list of products, as {"products": [...]}')
    if extra := sorted(set(document) - {"products"}):
        raise BadRequest(f"$.{extra[0]}: Extra inputs are not permitted")
    items = document["products"]
    if len(items) > MAX_IMPORT:
        raise BadRequest(f"$.products: at most {MAX_IMPORT} products per call, got {len(items)}")
    rejected, valid = [], []
    for index, item in enumerate(items):
        try:
            valid.append(ImportedProduct.model_validate(item))
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            rejected.append(
                {"index": index, "detail": f"{where}: {first['msg']}" if where else first["msg"]}
            )
    uow, at = UnitOfWork(buffered=True), now()
    for product in valid:
        given = product.given()
        given.pop("product_id")
        commerce.put_product(uow, product.product_id, given, at)
    uow.flush()  # the fan-outs of the changed products, in as few calls as can be
    return Response({"accepted": len(valid), "rejected": rejected}, status_code=200)


@route("/profiles/{profile_db}/{profile_id}/lists/{list_name}", methods=["PUT"])
def put_list(profile_db: str, profile_id: str, list_name: str) -> dict[str, Any]:
    """The whole list: lines not given are taken off, those kept keep their price seen."""
    wanted = body(blueprint.current_request, ListIn)
    items = [item.model_dump(exclude_none=True) for item in wanted.items]
    uow = UnitOfWork()
    commerce.replace_list(uow, profile_db, profile_id, list_name, items, now())
    return commerce.read_list(uow.storage, profile_db, profile_id, list_name)


@route("/profiles/{profile_db}/{profile_id}/lists/{list_name}", methods=["GET"])
def read_list(profile_db: str, profile_id: str, list_name: str) -> dict[str, Any]:
    return commerce.read_list(services().storage, profile_db, profile_id, list_name)
