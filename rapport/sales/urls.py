from django.urls import path

from rapport.sales import views

urlpatterns = [
    path("deals/", views.deal_list_view, name="deal-list"),
    path("deals/new/", views.deal_create_view, name="deal-create"),
    path("deals/<int:pk>/", views.deal_detail_view, name="deal-detail"),
    path("deals/<int:pk>/edit/", views.deal_edit_view, name="deal-edit"),
    path("deals/<int:pk>/delete/", views.deal_delete_view, name="deal-delete"),
    path("deals/<int:pk>/move/", views.deal_move_view, name="deal-move"),
    path("deals/<int:pk>/participants/", views.participant_add_view, name="participant-add"),
    path(
        "deals/<int:pk>/participants/<int:person_id>/delete/",
        views.participant_remove_view,
        name="participant-remove",
    ),
    path("products/", views.product_list_view, name="product-list"),
    path("products/<int:pk>/active/", views.product_active_view, name="product-active"),
    path("pipeline/", views.pipeline_board_view, name="pipeline-board"),
    path("pipeline/stages/<int:stage_id>/cards/", views.stage_cards_view, name="stage-cards"),
    path("pipeline/settings/", views.pipeline_settings_view, name="pipeline-settings"),
    path("forecast/", views.forecast_view, name="forecast"),
    path("organisations/<int:pk>/orders/", views.order_add_view, name="order-add"),
]
