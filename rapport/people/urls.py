from django.urls import path

from rapport.people import views

urlpatterns = [
    path("people/", views.person_list_view, name="person-list"),
    path("people/new/", views.person_create_view, name="person-create"),
    path("people/lookup/", views.person_lookup_view, name="person-lookup"),
    path("people/<int:pk>/", views.person_detail_view, name="person-detail"),
    path("people/<int:pk>/edit/", views.person_edit_view, name="person-edit"),
    path("people/<int:pk>/delete/", views.person_delete_view, name="person-delete"),
    path("people/<int:pk>/identities/", views.identity_add_view, name="identity-add"),
    path(
        "people/<int:pk>/identities/<int:identity_id>/delete/",
        views.identity_remove_view,
        name="identity-remove",
    ),
    path("people/<int:pk>/relationships/", views.relationship_add_view, name="relationship-add"),
    path(
        "people/<int:pk>/relationships/<int:rel_id>/delete/",
        views.relationship_remove_view,
        name="relationship-remove",
    ),
    path("people/<int:pk>/employments/", views.employment_add_view, name="employment-add"),
    path(
        "people/<int:pk>/employments/<int:employment_id>/end/",
        views.employment_end_view,
        name="employment-end",
    ),
    path("people/<int:pk>/addresses/", views.address_add_view, name="address-add"),
    path("people/<int:pk>/addresses/<int:address_id>/", views.address_edit_view, name="address-edit"),
    path(
        "people/<int:pk>/addresses/<int:address_id>/delete/",
        views.address_remove_view,
        name="address-remove",
    ),
    path("organisations/", views.organisation_list_view, name="organisation-list"),
    path("organisations/new/", views.organisation_create_view, name="organisation-create"),
    path("organisations/lookup/", views.organisation_lookup_view, name="organisation-lookup"),
    path("organisations/<int:pk>/", views.organisation_detail_view, name="organisation-detail"),
    path("organisations/<int:pk>/edit/", views.organisation_edit_view, name="organisation-edit"),
    path("organisations/<int:pk>/delete/", views.organisation_delete_view, name="organisation-delete"),
]
